"""Export of FedMef's local training step to on-device runtimes (ONNX Runtime, ExecuTorch).

A round's local step is one graph with state in and state out (``graph.py``), lowered per
runtime (``onnx_backend.py``, ``executorch_backend.py``) and described by a manifest
(``manifest.py``). The server calls::

    key = GraphKey.for_model(model, "cnn", batch_size, input_shape, num_classes, scaled=..., keep=...)
    manifest, directory = export_cached(key, cache_dir, "onnxruntime")     # or "executorch"

and ships ``state_of(model, layout_of(key), marked)``; a client calls ``load_runner(directory)``
and ``runner.step(state, x, y, lr, lam)`` / ``runner.growth(state, x, y)``.
"""

from .exporter import export, export_cached, export_executorch, export_ort
from .layout import GraphKey, Layout, layout_of
from .manifest import ArtifactError, Manifest, verify
from .runtime import StepRunner, load_runner
from .state import load_state, marked_state, state_of

__all__ = [
    "ArtifactError", "GraphKey", "Layout", "Manifest", "StepRunner", "export", "export_cached", "export_executorch",
    "export_ort", "layout_of", "load_runner", "load_state", "marked_state", "state_of", "verify",
]  # fmt: skip
