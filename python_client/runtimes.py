"""Graph runtimes behind one call: ``open_graph(manifest, graph, path)`` returns ``run(feeds) -> outputs``.

ONNX Runtime takes feeds by name (the exporter may drop inputs a graph does not read, so only the
session's own inputs are fed); ExecuTorch takes them positionally in the manifest's order. Both
return the outputs in the manifest's order. Runtime-specific (private or experimental) APIs stay
in this module; ExecuTorch (and with it torch) is imported only when a manifest asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedmef.manifest import Manifest

Run = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def open_graph(manifest: Manifest, graph: str, path: Path, threads: int = 0) -> Run:
    if manifest.runtime == "onnxruntime":
        return _ort(path, threads)
    if manifest.runtime == "onnxruntime-training":  # the training model runs in the training venv's worker
        from .ort_training import TrainingSession

        return TrainingSession(manifest, path, threads) if graph == "step" else _ort(path, threads)
    if manifest.runtime == "executorch":
        return _executorch(path, [spec.name for spec in manifest.inputs(graph)])
    raise ValueError(f"no runtime for {manifest.runtime!r}")


def ort_options(threads: int = 0, arena: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = arena
    return options


def _ort(path: Path, threads: int) -> Run:
    import onnxruntime as ort

    # constant folding would bake zero tensors derived at run time into dense constants
    session = ort.InferenceSession(
        str(path), ort_options(threads), providers=["CPUExecutionProvider"], disabled_optimizers=["ConstantFolding"]
    )
    names = [i.name for i in session.get_inputs()]

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        missing = [name for name in names if name not in feeds]
        if missing:
            raise KeyError(f"{path.name} needs inputs {missing}")
        return session.run(None, {name: feeds[name] for name in names})

    return run


def _executorch(path: Path, order: list[str]) -> Run:
    import torch
    from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

    data = path.read_bytes()
    module = _load_for_executorch_from_buffer(data)

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        _ = data  # the module reads from ``data``: keep the bytes alive with it
        outputs = module.forward(tuple(torch.from_numpy(np.require(feeds[name], requirements="C")) for name in order))
        return [output.numpy().copy() for output in outputs]

    return run
