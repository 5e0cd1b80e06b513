"""The manifest contract (``fedmef.manifest`` + its JSON Schema), the export cache and the export CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import jsonschema
import numpy as np
import pytest

from export import exporter
from export.__main__ import main
from export.exporter import export, export_cached
from export.layout import GraphKey, layout_of
from fedmef import protocol as p
from fedmef import wire
from fedmef.manifest import ArtifactError, Manifest, schema, sha256_of, verify
from fedmef.training import LocalPlan

from .export_support import DENSITY, batch, keyed_model, open_export
from .vector_support import ARTIFACTS

KEY = GraphKey("cnn", (1, 8, 8), 10, 4, (), width=4, scaled=True, keep=0.5, extrusion=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    key, model = keyed_model(KEY)
    directory = tmp_path_factory.mktemp("cnn-ort")
    return key, model, export(key, directory, "onnxruntime"), directory


def test_manifest_round_trips_and_describes_the_graphs(exported):
    key, _, manifest, directory = exported
    loaded = Manifest.load(directory)
    assert loaded == manifest == Manifest.from_json(manifest.to_json())
    assert GraphKey.from_dict(loaded.key) == key
    layout = layout_of(key)
    assert loaded.tensors == list(layout.tensors)
    assert {g: list(graph.inputs) for g, graph in loaded.graphs.items()} == {
        g: list(names) for g, names in layout.graph_inputs.items()}  # fmt: skip
    tensors = {t.name: t for t in loaded.tensors}
    assert tensors["x"].shape == (4, 1, 8, 8) and tensors["y"].dtype == "int64"
    assert tensors["conv2.weight"].role == "values" and tensors["conv2.weight"].shape == (dict(key.layer_nnz)["conv2"],)
    assert tensors["conv2.positions"].dtype == "int32" and tensors["conv2.weight"].dense_shape == (8, 4, 3, 3)
    assert tensors["lr"].role == "plan" and tensors["step"].role == "counter"
    step = loaded.graphs["step"]
    assert step.outputs[0].role == "loss"
    assert {o.of for o in step.outputs[1:]} == {t.name for t in loaded.tensors if t.role in ("values", "param")}
    assert loaded.export_seconds > 0 and loaded.batch_size == 4
    for entry in loaded.files:
        assert entry.sha256 == sha256_of(directory / entry.name)


def test_written_manifests_satisfy_the_json_schema(exported):
    _, _, manifest, _ = exported
    jsonschema.validate(json.loads(manifest.to_json()), schema())
    jsonschema.validate(json.loads((ARTIFACTS / "manifest.json").read_text()), schema())
    jsonschema.Draft202012Validator.check_schema(schema())


def _mutated(manifest: Manifest, change) -> str:
    data = json.loads(manifest.to_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(schema_version=1), "schema version 1, this client reads 2"),
    (lambda d: d.pop("schema_version"), "schema version None"),
    (lambda d: d.update(runtime="tflite"), "at runtime"),
    (lambda d: d.pop("files"), "'files' is a required property"),
    (lambda d: d["files"][0].update(sha256="xyz"), "at files/0/sha256"),
    (lambda d: d["files"][0].update(name="../evil"), "at files/0/name"),
    (lambda d: d["tensors"][0].update(role="secret"), "at tensors/0/role"),
    (lambda d: d["tensors"][0].pop("layer"), "'layer' is a required property"),
    (lambda d: d["graphs"]["step"]["inputs"].append("ghost"), "inputs \\['ghost'\\] that are not"),
    (lambda d: d["graphs"]["step"].update(file="other.onnx"), "not in the manifest's files"),
    (lambda d: d.update(extra=1), "Additional properties"),
])  # fmt: skip
def test_bad_manifests_are_rejected_with_a_clear_error(exported, change, message):
    _, _, manifest, _ = exported
    with pytest.raises(ValueError, match=message):
        Manifest.from_json(_mutated(manifest, change))


def test_non_json_is_rejected():
    with pytest.raises(ValueError, match="not JSON"):
        Manifest.from_json("{not json")


def test_corrupt_or_missing_file_names_the_file(exported, tmp_path):
    _, _, manifest, directory = exported
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    data = bytearray((copy / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "step.onnx").write_bytes(bytes(data))
    expected = manifest.file("step").sha256
    with pytest.raises(ArtifactError, match=f"step.onnx: sha256 mismatch, expected {expected}, got [0-9a-f]{{64}}"):
        verify(manifest, copy)
    (copy / "step.onnx").write_bytes(bytes(data[:-1]))
    with pytest.raises(ArtifactError, match="step.onnx: size mismatch"):
        verify(manifest, copy)
    (copy / "step.onnx").unlink()
    with pytest.raises(ArtifactError, match="step.onnx: missing"):
        verify(manifest, copy)


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
    (directory / "manifest.json").write_text("{")  # a torn manifest is re-exported too
    assert export_cached(key, tmp_path, "onnxruntime")[0].files == manifest.files
    other = replace(key, batch_size=2)
    assert export_cached(other, tmp_path, "onnxruntime")[1] != directory


def test_export_cache_is_per_code_version(exported, tmp_path, monkeypatch):
    """An export traced by other code (say, another penalty with the same inputs) is never reused."""
    key, *_ = exported
    _, directory = export_cached(key, tmp_path, "onnxruntime")
    assert directory.name == f"onnxruntime-{key.digest()}-{exporter.code_digest()}"
    monkeypatch.setattr(exporter, "code_digest", lambda: "0ther000")
    assert export_cached(key, tmp_path, "onnxruntime")[1].name.endswith("-0ther000")


def test_cli_exports_a_runnable_round(tmp_path):
    main(["cnn", "--runtime", "onnxruntime", "--out", str(tmp_path / "export"), "--width", "4", "--batch-size", "4",
          "--density", str(DENSITY), "--keep", "0.5", "--scaled", "--extrusion"])  # fmt: skip
    manifest = Manifest.load(tmp_path / "export")
    key = GraphKey.from_dict(manifest.key)
    assert key.keep == 0.5 and key.scaled and key.sparse and key.extrusion
    keyed, model = keyed_model(replace(key, layer_nnz=()))
    assert keyed == key, "the CLI's ERK nnz are the test model's"
    backend = open_export(tmp_path / "export", tmp_path / "store")
    scalars, _ = wire.encode_plan(LocalPlan(epochs=1, batch_size=4, lr=0.1), 1)
    x, y = batch(key, count=8)
    update, loss = backend.train(wire.encode_state(model), scalars, x, y)
    assert np.isfinite(loss)
    assert {k for k in update if k.startswith(p.VALUES)} == {p.VALUES + n for n, _ in key.layer_nnz}
