"""Export functions: a ``GraphKey`` in, a directory with graphs + ``manifest.json`` out.

``export(key, out_dir, runtime)`` traces the step, growth and evaluation graphs once
(``graph.trace``) and hands them to the runtime's ``write``; ``export_cached`` reuses a previous
export of the same key and the same code (verified by hash), so a federated round ships only
state. Used by the server and the CLI (``python -m export``).
"""

from __future__ import annotations

import hashlib
import importlib
import time
from functools import cache
from pathlib import Path

from fedmef.manifest import ArtifactError, Graph, Manifest, file_entry, verify

from .graph import trace
from .layout import GraphKey, example_inputs, layout_of

#: runtime name in the manifest -> the module that writes its files
WRITERS = {"onnxruntime": "onnx_backend", "executorch": "executorch_backend", "onnxruntime-training": "ort_training"}


def writer(runtime: str):
    if runtime not in WRITERS:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {sorted(WRITERS)}")
    return importlib.import_module(f"{__package__}.{WRITERS[runtime]}")


def export(key: GraphKey, out_dir: str | Path, runtime: str) -> Manifest:
    """Write every graph of ``key`` for ``runtime`` into ``out_dir`` and return the manifest."""
    backend = writer(runtime)
    if hasattr(backend, "export"):  # ORT training: its own set of standard artifacts
        return backend.export(key, out_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    layout = layout_of(key)
    files, graphs, extra = [], {}, {}
    for graph, inputs in layout.graph_inputs.items():
        example = example_inputs(layout.inputs(graph), key.num_classes)
        gm, _ = trace(key, example, graph)
        path = out / f"{graph}{backend.EXTENSION}"
        outputs = layout.outputs[graph]
        extra[graph] = backend.write(gm, example, list(inputs), [o.name for o in outputs], path)
        files.append(file_entry(path))
        graphs[graph] = Graph(path.name, inputs, outputs)
    manifest = Manifest(
        runtime=runtime, batch_size=key.batch_size, tensors=list(layout.tensors), graphs=graphs, files=files,
        key=key.to_dict(), export_seconds=round(time.perf_counter() - start, 3),
        peak_memory_bytes=extra["step"].get("planned_arena_bytes"),
    )  # fmt: skip
    manifest.save(out)
    return manifest


def export_ort(key: GraphKey, out_dir: str | Path) -> Manifest:
    return export(key, out_dir, "onnxruntime")


def export_executorch(key: GraphKey, out_dir: str | Path) -> Manifest:
    return export(key, out_dir, "executorch")


@cache
def code_digest() -> str:
    """A short hash of the code a graph is traced from (``export/`` and ``fedmef/``): a cached export
    of an older version (say, another penalty with the same inputs) must not be reused."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*(root / "export").glob("*.py"), *(root / "fedmef").glob("*.py")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:8]


def export_cached(key: GraphKey, cache_dir: str | Path, runtime: str) -> tuple[Manifest, Path]:
    """The export of ``key`` under ``cache_dir/<runtime>-<key digest>-<code digest>``, exporting only if
    absent or corrupt."""
    directory = Path(cache_dir) / f"{runtime}-{key.digest()}-{code_digest()}"
    if (directory / "manifest.json").is_file():
        try:
            manifest = Manifest.load(directory)
            verify(manifest, directory)
            if manifest.key == key.to_dict():
                return manifest, directory
        except (ArtifactError, ValueError):
            pass
    return export(key, directory, runtime), directory
