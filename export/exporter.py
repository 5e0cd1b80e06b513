"""Export functions: a ``GraphKey`` in, a directory with graphs + ``manifest.json`` out.

``export(key, out_dir, runtime)`` traces the step and growth graphs once (``graph.trace``) and
hands them to the runtime's ``write``; ``export_cached`` reuses a previous export of the same key
(verified by hash), so a federated round ships only state. Used by the server and the CLI
(``python -m fedmef.export``).
"""

from __future__ import annotations

import time
from pathlib import Path

from .graph import trace
from .layout import GraphKey, example_inputs, layout_of
from .manifest import ArtifactError, Manifest, TensorEntry, file_entry, verify
from .runtime import adapter

GRAPHS = ("step", "growth")


def export(key: GraphKey, out_dir: str | Path, runtime: str, round_num: int = 0) -> Manifest:
    """Write both graphs of ``key`` for ``runtime`` into ``out_dir`` and return the manifest."""
    backend = adapter(runtime)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    layout = layout_of(key)
    example = example_inputs(layout, key.num_classes)
    names = [spec.name for spec in layout.inputs]
    files, outputs, extra = [], {}, {}
    for graph in GRAPHS:
        gm, _ = trace(key, example, graph)
        path = out / f"{graph}{backend.EXTENSION}"
        outputs[graph] = layout.outputs(graph)
        extra[graph] = backend.write(gm, example, names, outputs[graph], path)
        files.append(file_entry(path, graph))
    arena = extra["step"].get("planned_arena_bytes")
    manifest = Manifest(
        runtime=runtime, key=key.to_dict(), round=round_num, files=files, outputs=outputs,
        inputs=[TensorEntry(s.name, list(s.shape), s.dtype, s.role, list(s.dense_shape) if s.dense_shape else None)
                for s in layout.inputs],
        hyperparameters={"weight_decay": key.weight_decay, "batch_size": key.batch_size},
        export_seconds=round(time.perf_counter() - start, 3), peak_memory_bytes=arena,
    )  # fmt: skip
    manifest.save(out)
    return manifest


def export_ort(key: GraphKey, out_dir: str | Path, round_num: int = 0) -> Manifest:
    return export(key, out_dir, "onnxruntime", round_num)


def export_executorch(key: GraphKey, out_dir: str | Path, round_num: int = 0) -> Manifest:
    return export(key, out_dir, "executorch", round_num)


def export_cached(key: GraphKey, cache_dir: str | Path, runtime: str) -> tuple[Manifest, Path]:
    """The export of ``key`` under ``cache_dir/<runtime>-<key digest>``, exporting only if absent or corrupt."""
    directory = Path(cache_dir) / f"{runtime}-{key.digest()}"
    if (directory / "manifest.json").is_file():
        manifest = Manifest.load(directory)
        try:
            verify(manifest, directory)
            if manifest.key == key.to_dict():
                return manifest, directory
        except ArtifactError:
            pass
    return export(key, directory, runtime), directory
