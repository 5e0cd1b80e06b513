"""The manifest contract, artifact verification, the export cache and the CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from export.__main__ import main
from export.exporter import export, export_cached
from export.layout import GraphKey, Layout, layout_of
from export.manifest import ArtifactError, Manifest, sha256_of
from export.runtime import load_runner
from export.state import state_of

from .export_support import batch, keyed_model

KEY = GraphKey("cnn", (1, 8, 8), 10, 4, (), width=4, scaled=True, keep=0.5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    key, model = keyed_model(KEY)
    directory = tmp_path_factory.mktemp("cnn-ort")
    return key, model, export(key, directory, "onnxruntime"), directory


def test_manifest_round_trips_and_describes_the_graph(exported):
    key, model, manifest, directory = exported
    loaded = Manifest.load(directory)
    assert loaded == manifest == Manifest.from_json(manifest.to_json())
    assert GraphKey.from_dict(loaded.key) == key
    assert Layout.from_manifest(loaded) == layout_of(key)
    inputs = {t.name: t for t in loaded.inputs}
    assert inputs["x"].shape == [4, 1, 8, 8] and inputs["y"].dtype == "int64"
    assert inputs["conv2.weight"].shape == [dict(key.layer_nnz)["conv2"]]
    assert inputs["conv2.positions"].dtype == "int32" and inputs["conv2.weight"].dense_shape == [8, 4, 3, 3]
    assert loaded.outputs["step"][0] == "loss" and loaded.export_seconds > 0
    for entry in loaded.files:
        assert entry.sha256 == sha256_of(directory / entry.name)


def test_bad_manifests_are_rejected(exported):
    _, _, manifest, _ = exported
    data = json.loads(manifest.to_json())
    with pytest.raises(ValueError, match="schema version 2"):
        Manifest.from_json(json.dumps({**data, "schema_version": 2}))
    with pytest.raises(ValueError, match="runtime"):
        Manifest.from_json(json.dumps({**data, "runtime": "tflite"}))
    with pytest.raises(ValueError, match="malformed"):
        Manifest.from_json(json.dumps({k: v for k, v in data.items() if k != "files"}))


def test_corrupt_or_missing_file_names_the_file(exported, tmp_path):
    _, _, manifest, directory = exported
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    data = bytearray((copy / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "step.onnx").write_bytes(bytes(data))
    expected = manifest.file("step").sha256
    with pytest.raises(ArtifactError, match=f"step.onnx: sha256 mismatch, expected {expected}, got [0-9a-f]{{64}}"):
        load_runner(copy)
    (copy / "step.onnx").unlink()
    with pytest.raises(ArtifactError, match="step.onnx: missing"):
        load_runner(copy)
    with pytest.raises(ValueError, match="not executorch"):
        load_runner(directory, "executorch")


def test_runner_checks_input_shapes(exported):
    key, model, _, directory = exported
    runner = load_runner(directory)
    state = state_of(model, layout_of(key))
    x, y = batch(key)
    with pytest.raises(ValueError, match="input 'x'"):
        runner.step(state, x[:2], y, 0.1, 0.0)
    with pytest.raises(KeyError, match="conv1.positions"):
        runner.step({k: v for k, v in state.items() if k != "conv1.positions"}, x, y, 0.1, 0.0)


def test_export_cache_reuses_verified_exports(exported, tmp_path):
    key, *_ = exported
    manifest, directory = export_cached(key, tmp_path, "onnxruntime")
    stamp = (directory / "step.onnx").stat().st_mtime_ns
    again, same = export_cached(key, tmp_path, "onnxruntime")
    assert same == directory and again == manifest
    assert (directory / "step.onnx").stat().st_mtime_ns == stamp
    (directory / "growth.onnx").write_bytes(b"corrupt")
    _, repaired = export_cached(key, tmp_path, "onnxruntime")
    assert sha256_of(repaired / "growth.onnx") == manifest.file("growth").sha256
    other = replace(key, batch_size=2)
    assert export_cached(other, tmp_path, "onnxruntime")[1] != directory


def test_cli_exports_a_runnable_step(tmp_path):
    main(["cnn", "--runtime", "onnxruntime", "--out", str(tmp_path), "--width", "4", "--batch-size", "4",
          "--density", "0.2", "--keep", "0.5", "--scaled"])  # fmt: skip
    runner = load_runner(tmp_path / "manifest.json")
    key = GraphKey.from_dict(runner.manifest.key)
    assert key.keep == 0.5 and key.scaled and key.sparse
    _, model = keyed_model(replace(key, layer_nnz=()))
    state = {t.name: np.zeros(t.shape, t.dtype) for t in runner.manifest.inputs if t.role != "data"}
    for t in runner.manifest.inputs:
        if t.role == "positions":
            state[t.name] = np.arange(t.shape[0], dtype=np.int32)
    loss, updated = runner.step(state, *batch(key), 0.1, 0.0)
    assert np.isfinite(loss) and set(updated) == set(state)
