"""ONNX Runtime writer: a traced step as a plain ONNX graph that ``InferenceSession`` runs.

The whole step (forward, backward, SGD) is one inference graph, so the maintained plain
``onnxruntime`` / ``onnxruntime-android`` packages run it — no dependence on the discontinued
training package. Export uses the TorchScript exporter (``dynamo=False``; the dynamo exporter
needs onnxscript); its constant folding stays off so zero tensors derived at run time are not
baked into the file as dense constants. ``onnx_passes`` then folds what is small and constant,
so a session with or without ONNX Runtime's ``ConstantFolding`` runs the same graph.

``sap.after`` ordering edges become zero-copy ``Reshape`` views whose shape depends on the edge's
inputs: ONNX Runtime schedules a node just before its first consumer, and without them the SAP
compressions (and backward's rebuilds) would run where they keep dense tensors alive longest.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import Tensor, fx
from torch.onnx import register_custom_op_symbolic, symbolic_helper

from . import onnx_passes
from . import sap as _sap  # noqa: F401  (defines fedmef_export::after)

EXTENSION = ".onnx"
OPSET = 18  # BitwiseAnd (bit-packed SAP positions)
_aten = torch.ops.aten


def _after(g, x, deps):
    """``sap.after`` as ``Reshape(x, Shape(x) + 0 * sum(first element of each dep))``: a view of ``x`` (no
    copy) that ONNX Runtime cannot compute before every dep exists, and no optimizer folds away."""

    def const(values):
        return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

    zero = None
    for dep in symbolic_helper._unpack_list(deps):
        rank = symbolic_helper._get_tensor_rank(dep)
        first = g.op("Cast", g.op("Slice", dep, const([0] * rank), const([1] * rank)), to_i=7)  # int64
        zero = first if zero is None else g.op("Add", zero, first)
    zero = g.op("Reshape", g.op("Mul", zero, const(0)), const([1]))
    view = g.op("Reshape", x, g.op("Add", g.op("Shape", x), zero))
    view.setType(x.type())  # the static shape, which the exporter cannot infer through the data-dependent shape
    return view


register_custom_op_symbolic("fedmef_export::after", _after, OPSET)

PASSES = (onnx_passes.cast_round_trips, onnx_passes.int32_indices, onnx_passes.fold_shapes,
          onnx_passes.fold_constants, onnx_passes.drop_identities, onnx_passes.consume_unread,
          onnx_passes.prune)  # fmt: skip


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
    model = onnx.load(str(path))
    for rewrite in PASSES:
        rewrite(model)
    onnx.save(model, str(path))
    return {}
