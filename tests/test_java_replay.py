"""Parity of the Java node with the Python client on the default run's model, without a SuperLink.

The shared vectors (``tests/vectors/``, checked by the core's RoundRunnerTest) pin a tiny model.
Here the instruction is the one the server sends in an extrusion + adjustment round of the
default run (SmallCNN at its default width 32, FedMef: packed sparse weights, NSConv, SAP with the
fused ReLU, BaE marked sets, growth counts), built as the ServerApp builds it. The Python client
answers it with ``client_app.local_round``; the Java node answers the same instruction, written to
a directory, with ``--replay`` (``android_client/node``'s ``Replay``). The replies must agree:
identical keys, dtypes, shapes and growth indices, values within 1e-5, the same metrics.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from fedmef import partitions, wire
from fedmef import protocol as p
from fedmef.config import RunConfig
from fedmef.task import initial_model
from python_client import client_app
from python_client.artifacts import ArtifactStore
from server.artifacts import RoundExporter
from server.schedule import local_plan, round_phase

from .java_support import JAR, require_java
from .vector_support import assert_update_matches

NODE = {"partition-id": 1, "num-partitions": 3}


def write_instruction(directory, state: p.Arrays, plan: dict, manifest_json: str, files: p.Arrays) -> None:
    """The instruction as ``--replay`` reads it: plan.json, manifest.json, state/<key>.npy, artifacts/<name>."""
    (directory / "artifacts").mkdir(parents=True)
    scalars = {key: value.item() if isinstance(value, np.generic) else value for key, value in plan.items()}
    (directory / "plan.json").write_text(json.dumps(scalars, indent=1))
    (directory / "manifest.json").write_text(manifest_json)
    for key, array in state.items():
        path = directory / "state" / f"{key}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
    for key, data in files.items():
        (directory / "artifacts" / key.removeprefix(p.FILE)).write_bytes(data.tobytes())


def read_update(directory) -> p.Arrays:
    return {str(path.relative_to(directory))[: -len(".npy")]: np.load(path) for path in directory.rglob("*.npy")}


@pytest.fixture(scope="module")
def default_round(tmp_path_factory):
    """Round 2 of the default run's schedule shrunk to 4 rounds: extrusion and prune/grow, one local epoch."""
    config = RunConfig(num_rounds=4, adjust_interval=2, adjust_end_fraction=1.0, extrusion_rounds=2, local_epochs=1,
                       backend="ort", output_dir=str(tmp_path_factory.mktemp("out")))  # fmt: skip
    model = initial_model(config)
    scalars, marked = wire.encode_plan(local_plan(config, round_phase(config, 2), model), 2)
    state = wire.encode_state(model) | marked
    manifest, directory, _ = RoundExporter(config, tmp_path_factory.mktemp("cache")).export(model)
    files = {p.FILE + e.name: np.fromfile(directory / e.name, dtype=np.uint8) for e in manifest.files}
    data = partitions.save(client_app.share(config, NODE["partition-id"], NODE["num-partitions"]),
                           tmp_path_factory.mktemp("partition"), {"partition_id": NODE["partition-id"]})  # fmt: skip
    return config, state, scalars, manifest, files, data


def replay(tmp_path, data, *args: str) -> subprocess.CompletedProcess:
    java = require_java()
    command = [java, "-jar", str(JAR), "--replay", str(tmp_path / "instruction"), "--out", str(tmp_path / "out"),
               "--data", str(data), "--threads", "1", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_java_round_equals_the_python_round_on_the_default_model(default_round, tmp_path):
    config, state, scalars, manifest, files, data = default_round
    assert any(k.startswith(p.MARKED) for k in state) and any(k.startswith(p.GROW) for k in scalars)
    assert config.model_width == 0 and config.flags.activation_pruning and config.sap_fuse_relu  # the defaults
    plan = scalars | {p.MANIFEST: manifest.to_json()}
    expected, metrics = client_app.local_round(config, NODE, ArtifactStore(tmp_path / "py"), state, plan, files)

    write_instruction(tmp_path / "instruction", state, scalars, manifest.to_json(), files)
    run = replay(tmp_path, data)
    assert run.returncode == 0, run.stdout + run.stderr
    update = read_update(tmp_path / "out" / "update")
    assert_update_matches(update, expected)
    for layer in p.with_prefix(p.VALUES, state):  # the client changed no mask: the same nnz per layer
        assert update[p.VALUES + layer].shape == state[p.VALUES + layer].shape
    java_metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert java_metrics[p.NUM_EXAMPLES] == metrics[p.NUM_EXAMPLES]
    assert java_metrics[p.TRAIN_LOSS] == pytest.approx(metrics[p.TRAIN_LOSS], rel=1e-5)


def test_java_evaluation_equals_the_python_evaluation_on_the_default_model(default_round, tmp_path):
    config, state, scalars, manifest, files, data = default_round
    plan = scalars | {p.MANIFEST: manifest.to_json()}
    expected = client_app.local_evaluation(config, NODE, ArtifactStore(tmp_path / "py"), state, plan, files)
    write_instruction(tmp_path / "instruction", state, scalars, manifest.to_json(), files)
    run = replay(tmp_path, data, "--message-type", "evaluate")
    assert run.returncode == 0, run.stdout + run.stderr
    got = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert got[p.NUM_EXAMPLES] == expected[p.NUM_EXAMPLES]
    assert got[p.LOSS] == pytest.approx(expected[p.LOSS], abs=1e-5)
    assert got[p.ACCURACY] == pytest.approx(expected[p.ACCURACY], abs=1e-12)
