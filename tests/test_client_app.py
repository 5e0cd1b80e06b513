"""The client's round without Flower: backends agree exactly, artifacts are verified, failures become replies."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from fedmef import protocol as p
from fedmef import wire
from fedmef.config import RunConfig
from fedmef.manifest import ArtifactError, Manifest
from fedmef.task import initial_model
from python_client import client_app
from python_client.artifacts import ArtifactStore
from server.artifacts import RoundExporter
from server.schedule import local_plan, round_phase

from .vector_support import assert_update_matches

NODE = {"partition-id": 1, "num-partitions": 3}


def round_inputs(config: RunConfig, round_num: int):
    """What the server sends in ``round_num``: sparse state + plan, built as the ServerApp builds them."""
    model = initial_model(config)
    scalars, marked = wire.encode_plan(local_plan(config, round_phase(config, round_num), model), round_num)
    return model, wire.encode_state(model) | marked, scalars


def run_round(config, store_dir, state, scalars, manifest, files):
    with_manifest = scalars | {p.MANIFEST: manifest.to_json()}
    return client_app.local_round(config, NODE, ArtifactStore(store_dir), state, with_manifest, files)


# without SAP, and with SAP (ReLU not fused, so the exported step computes what the eager custom op does)
SETTINGS = [{"sap_drop": 0.0}, {"sap_drop": 0.5, "sap_fuse_relu": False}]


@pytest.fixture(scope="module", params=SETTINGS, ids=["plain", "sap"])
def setting(request, tmp_path_factory):
    # an adjustment round with extrusion, so the marked set, lambda ramp and growth signal all travel
    config = RunConfig(
        num_rounds=4, adjust_interval=2, adjust_end_fraction=1.0, extrusion_rounds=2, local_epochs=1,
        batch_size=16, backend="ort", output_dir=str(tmp_path_factory.mktemp("out")), **request.param,
    )  # fmt: skip
    model, state, scalars = round_inputs(config, 2)
    manifest, directory, _ = RoundExporter(config, tmp_path_factory.mktemp("cache")).export(model)
    exporter_files = {p.FILE + e.name: np.fromfile(directory / e.name, dtype=np.uint8) for e in manifest.files}
    return config, state, scalars, manifest, exporter_files


def test_ort_round_matches_eager_round(setting, tmp_path):
    """Digits (many tied pixel values) with SAP: ties are broken by position everywhere, so no allowance."""
    config, state, scalars, manifest, files = setting
    assert any(key.startswith(p.MARKED) for key in state) and any(key.startswith(p.GROW) for key in scalars)
    eager, eager_metrics = client_app.local_round(
        dataclasses.replace(config, backend="torch"), NODE, ArtifactStore(tmp_path / "a"), state, scalars, {}
    )
    ort, ort_metrics = run_round(config, tmp_path / "b", state, scalars, manifest, files)
    assert ort_metrics[p.NUM_EXAMPLES] == eager_metrics[p.NUM_EXAMPLES]
    assert ort_metrics[p.TRAIN_LOSS] == pytest.approx(eager_metrics[p.TRAIN_LOSS], rel=1e-5)
    assert_update_matches(ort, eager)


def test_ort_evaluation_matches_eager(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    eager = client_app.local_evaluation(dataclasses.replace(config, backend="torch"), NODE,
                                        ArtifactStore(tmp_path / "a"), state, scalars, {})  # fmt: skip
    graph = client_app.local_evaluation(config, NODE, ArtifactStore(tmp_path / "b"), state,
                                        scalars | {p.MANIFEST: manifest.to_json()}, files)  # fmt: skip
    assert graph[p.NUM_EXAMPLES] == eager[p.NUM_EXAMPLES]
    assert graph[p.LOSS] == pytest.approx(eager[p.LOSS], abs=1e-5)
    assert graph[p.ACCURACY] == pytest.approx(eager[p.ACCURACY], abs=1e-12)


def test_second_round_needs_no_files(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    store = ArtifactStore(tmp_path)
    with_manifest = scalars | {p.MANIFEST: manifest.to_json()}
    first, _ = client_app.local_round(config, NODE, store, state, with_manifest, files)
    again, _ = client_app.local_round(config, NODE, store, state, with_manifest, {})
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_corrupted_artifact_names_file_and_hashes(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    broken = dict(files)
    name = next(iter(broken))
    broken[name] = broken[name].copy()
    broken[name][len(broken[name]) // 2] ^= 0xFF
    with pytest.raises(ArtifactError, match=rf"{name.removeprefix(p.FILE)}: sha256 mismatch, expected [0-9a-f]{{64}}"):
        run_round(config, tmp_path, state, scalars, manifest, broken)
    assert not list(tmp_path.iterdir()), "nothing corrupted is kept"


def test_corrupted_file_in_the_store_is_caught_before_loading(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    run_round(config, tmp_path, state, scalars, manifest, files)
    stored = tmp_path / manifest.file("step").sha256
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ArtifactError, match="step.onnx: sha256 mismatch"):
        run_round(config, tmp_path, state, scalars, manifest, {})


def test_missing_artifact_asks_for_resend(setting, tmp_path):
    config, state, scalars, manifest, _ = setting
    with pytest.raises(ArtifactError, match="step.onnx: missing"):
        run_round(config, tmp_path, state, scalars, manifest, {})


def test_unlisted_or_escaping_file_is_refused(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    with pytest.raises(ArtifactError, match="not listed in the manifest"):
        run_round(config, tmp_path, state, scalars, manifest, files | {p.FILE + "../evil.onnx": np.zeros(3, np.uint8)})
    text = manifest.to_json().replace('"step.onnx"', '"../step.onnx"')
    with pytest.raises(ValueError, match="malformed manifest at .*does not match"):
        Manifest.from_json(text)


def test_run_without_a_manifest_fails_clearly(setting, tmp_path):
    config, state, scalars, _, _ = setting
    with pytest.raises(ValueError, match="needs the round's manifest"):
        client_app.local_round(config, NODE, ArtifactStore(tmp_path), state, scalars, {})


def test_handler_failure_becomes_error_reply():
    replies = []
    msg = SimpleNamespace(create_error_reply=lambda error: replies.append(error) or "error-reply")

    def broken(msg, context):
        raise ArtifactError("step.onnx: sha256 mismatch")

    assert client_app.guarded(broken)(msg, None) == "error-reply"
    assert replies[0].code == p.CLIENT_ERROR
    assert replies[0].reason == "ArtifactError: step.onnx: sha256 mismatch"


def test_exporter_ships_files_once_per_node(setting, tmp_path):
    config, *_ = setting
    exporter = RoundExporter(config, tmp_path)
    model = initial_model(config)
    manifest, directory, first = exporter.export(model)
    again, _, cached = exporter.export(model)
    assert again.to_json() == manifest.to_json() and cached < first
    assert set(exporter.payload(7, manifest, directory)) == {p.FILE + e.name for e in manifest.files}
    exporter.delivered(7, manifest)
    assert exporter.payload(7, manifest, directory) == {}
    assert exporter.payload(8, manifest, directory)  # another node still needs them
    exporter.forget(7)
    assert exporter.payload(7, manifest, directory)


def test_graph_client_never_imports_torch():
    """A client running exported graphs needs numpy and the runtime, not torch or the exporter."""
    code = ("import sys, python_client.client_app, python_client.rounds, python_client.artifacts; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'export', 'server', 'executorch'));"
            "print(bad); assert not bad, bad")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


def test_node_pinned_to_another_runtime_refuses_the_artifact(setting, tmp_path):
    config, state, scalars, manifest, files = setting
    with pytest.raises(ValueError, match="runs backend 'executorch' and cannot run a onnxruntime artifact"):
        client_app.local_round(config, NODE | {"backend": "executorch"}, ArtifactStore(tmp_path), state,
                               scalars | {p.MANIFEST: manifest.to_json()}, files)  # fmt: skip
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        client_app.local_round(config, NODE | {"backend": "tflite"}, ArtifactStore(tmp_path), state, scalars, files)
