"""Export of FedMef's round graphs to on-device runtimes (ONNX Runtime, ExecuTorch).

A round's local step is one graph with state in and state out (``graph.py``), lowered per
runtime (``onnx_backend.py``, ``executorch_backend.py``) and described by a manifest
(``fedmef.manifest``), the contract every client reads. The server calls::

    key = GraphKey.for_model(model, "cnn", batch_size, input_shape, num_classes, scaled=..., keep=...)
    manifest, directory = export_cached(key, cache_dir, "onnxruntime")     # or "executorch"

and ships the wire state (``fedmef.wire``); clients build the graphs' feeds from the manifest.
"""

from .exporter import export, export_cached, export_executorch, export_ort
from .layout import GraphKey, Layout, layout_of

__all__ = ["GraphKey", "Layout", "export", "export_cached", "export_executorch", "export_ort", "layout_of"]
