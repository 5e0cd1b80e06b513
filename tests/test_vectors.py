"""The committed test vectors are what the code computes, and the Python client meets them."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from fedmef import protocol as p
from fedmef.manifest import Manifest
from python_client.artifacts import ArtifactStore
from tests.vector_support import ARTIFACTS, ROUND, VECTORS, assert_update_matches, load_round, read_arrays


def _generator():
    spec = importlib.util.spec_from_file_location("generate_vectors", VECTORS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("vectors")
    _generator().write_vectors(out, out / "artifacts")
    return out


@pytest.mark.parametrize("name", ["shuffle.json", "maskbits.json", "round/plan.json", "round/batches.json",
                                  "round/data/partition.json"])  # fmt: skip
def test_committed_json_vectors_match_the_code(regenerated, name):
    assert json.loads((regenerated / name).read_text()) == json.loads((VECTORS / name).read_text()), (
        f"{name} is stale: run `make vectors` and commit"
    )


@pytest.mark.parametrize("part", ["state", "data", "inputs", "expected/update"])
def test_committed_arrays_match_the_code(regenerated, part):
    fresh, committed = read_arrays(regenerated / "round" / part), read_arrays(ROUND / part)
    assert sorted(fresh) == sorted(committed), f"round/{part} is stale: run `make vectors`"
    for key, value in committed.items():
        assert fresh[key].dtype == value.dtype and fresh[key].shape == value.shape, key
        np.testing.assert_allclose(fresh[key], value, rtol=0, atol=1e-6, err_msg=key)


def test_committed_metrics_match_the_code(regenerated):
    for name in ("metrics.json", "evaluate.json"):
        fresh = json.loads((regenerated / "round/expected" / name).read_text())
        assert fresh == pytest.approx(json.loads((ROUND / "expected" / name).read_text()), rel=1e-6)


def test_vectors_cover_the_whole_contract():
    state, plan, data = load_round()
    assert plan[p.EXTRUDE] == 1.0 and any(k.startswith(p.MARKED) for k in state), "an extrusion round"
    assert any(v > 0 for k, v in p.with_prefix(p.GROW, plan).items()), "an adjustment round"
    assert len(p.batches(len(data.train), plan[p.BATCH_SIZE], plan[p.EPOCHS], plan[p.SEED])) == 3
    assert len(data.validation) % plan[p.BATCH_SIZE], "the evaluation's last batch is padded"
    manifest = Manifest.load(ARTIFACTS)
    assert {"values", "positions", "marked", "param", "data", "plan", "counter"} <= {t.role for t in manifest.tensors}


@pytest.fixture(scope="module")
def python_client(tmp_path_factory):
    manifest = Manifest.load(ARTIFACTS)
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    store.receive(manifest, {e.name: np.fromfile(ARTIFACTS / e.name, dtype=np.uint8) for e in manifest.files})
    return store.backend(manifest)


def test_python_client_round_meets_the_vectors(python_client):
    state, plan, data = load_round()
    update, loss = python_client.train(state, plan, data.train.x, data.train.y)
    expected = read_arrays(ROUND / "expected" / "update")
    assert_update_matches(update, expected)
    metrics = json.loads((ROUND / "expected" / "metrics.json").read_text())
    assert loss == pytest.approx(metrics[p.TRAIN_LOSS], rel=1e-5)


def test_python_client_evaluation_meets_the_vectors(python_client):
    state, _, data = load_round()
    loss, accuracy = python_client.evaluate(state, data.validation.x, data.validation.y)
    expected = json.loads((ROUND / "expected" / "evaluate.json").read_text())
    assert loss == pytest.approx(expected[p.LOSS], abs=1e-5)
    assert accuracy == expected[p.ACCURACY]
