"""ONNX Runtime adapter: write a traced step as a plain ONNX graph, run it with ``InferenceSession``.

The whole step (forward, backward, SGD) is one inference graph, so the maintained plain
``onnxruntime`` / ``onnxruntime-android`` packages run it — no dependence on the discontinued
training package. Export uses the TorchScript exporter (``dynamo=False``; the dynamo exporter
needs onnxscript); constant folding stays off in export and session so zero tensors derived at
run time are not baked into the file as dense constants.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, fx

from .runtime import GraphRunner

EXTENSION = ".onnx"
OPSET = 18  # BitwiseAnd (bit-packed SAP positions)
_aten = torch.ops.aten


def _rewrite(gm: fx.GraphModule) -> fx.GraphModule:
    """Map the few aten ops the TorchScript exporter lacks to equivalent ones it knows."""
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target == _aten._to_copy.default:
            node.target, node.args, node.kwargs = _aten.to.dtype, (node.args[0], node.kwargs["dtype"]), {}
        elif node.target == _aten._unsafe_view.default:
            node.target = _aten.view.default
    gm.recompile()
    return gm


def write(gm: fx.GraphModule, example: list[Tensor], inputs: list[str], outputs: list[str], path: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _rewrite(gm), tuple(example), str(path), input_names=inputs, output_names=outputs,
            dynamo=False, do_constant_folding=False, opset_version=OPSET,
        )  # fmt: skip
    return {}


def session_options(threads: int = 0, arena: bool = True) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = arena
    return options


class Runner(GraphRunner):
    options = session_options()

    def _open(self, path: Path) -> ort.InferenceSession:
        return ort.InferenceSession(
            str(path), self.options, providers=["CPUExecutionProvider"], disabled_optimizers=["ConstantFolding"]
        )

    def _run(self, handle: ort.InferenceSession, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        # the exporter drops graph inputs a graph does not use (the growth graph ignores lr, lam)
        return handle.run(None, {i.name: feed[i.name] for i in handle.get_inputs()})
