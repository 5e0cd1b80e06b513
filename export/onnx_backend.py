"""ONNX Runtime writer: a traced step as a plain ONNX graph that ``InferenceSession`` runs.

The whole step (forward, backward, SGD) is one inference graph, so the maintained plain
``onnxruntime`` / ``onnxruntime-android`` packages run it — no dependence on the discontinued
training package. Export uses the TorchScript exporter (``dynamo=False``; the dynamo exporter
needs onnxscript); constant folding stays off in export and session so zero tensors derived at
run time are not baked into the file as dense constants.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, fx

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
