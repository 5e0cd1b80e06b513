"""The round's graphs — one local training step, the growth signal, the evaluation — traced to aten.

The model's own forward is symbolically traced once (prunable layers kept as leaves) and re-run
by :class:`SparseForward`, which feeds each layer from the flat state instead of module
parameters: packed values are scattered into the weight inside the graph (pruned weights are
structurally zero), NSConv statistics are taken over the packed values, and every conv is a
``SapConv`` (hand-written backward; compressed input when keep < 1). ``make_fx`` then traces

    loss = CE(model(x), y) + lam * sum_l sum((W_l * marked_l)^2)     (W: effective weight, gain constant)
    p'   = p - lr' * (dloss/dp + wd * p)         (masked layout: p' *= mask)

exactly as ``fedmef.training.local_train`` does, into one graph with state in and state out;
lambda and lr' (the budget-aware learning rate) are computed in the graph from the plan's scalars
and the step counters (``docs/protocol.md`` §7), so no client computes a schedule. The growth
graph returns, per prunable layer, the top-k inactive |d CE / d W_used| (indices and magnitudes,
``training.growth_signal``); the evaluation graph per-sample losses and hits.
"""

from __future__ import annotations

import operator
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch._decomp import get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

from fedmef import protocol as p
from fedmef.activation_pruning import MaskedConv2d, MaskedLinear, Prunable, standardize
from fedmef.models import SkipGain

from .im2col import Im2colConv
from .layout import GraphKey, Layout, growth_sizes, layout_of
from .sap import PackedStandardize, SapConv, SapRelu, filled, scatter_weight

DECOMPOSITIONS = get_decompositions([
    torch.ops.aten.nll_loss_forward, torch.ops.aten.nll_loss_backward,
    torch.ops.aten._log_softmax_backward_data, torch.ops.aten.threshold_backward,

])  # fmt: skip
_DROP = {torch.ops.aten.detach.default, torch.ops.aten.alias.default, torch.ops.aten.lift_fresh_copy.default}


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, Prunable | SkipGain) or super().is_leaf_module(m, qualname)


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_function":
        return node.target in (torch.relu, F.relu)
    return node.op == "call_module" and isinstance(modules[node.target], nn.ReLU)


def _is_sap_conv(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    module = modules.get(node.target) if node.op == "call_module" else None
    return isinstance(module, MaskedConv2d) and module.keep < 1


class SparseForward(fx.Interpreter):
    """Runs the model's traced forward with parameters taken from ``params`` (name -> tensor)."""

    def __init__(self, model: nn.Module, key: GraphKey, probes: bool = False):
        graph = _LeafTracer().trace(model)
        super().__init__(fx.GraphModule(model, graph))
        self.model, self.key, self.probes = model, key, probes
        self.fusable = {n for n in graph.nodes if self._fusable(n)}
        self.mask_in_consumers = {n for n in self.fusable if self._masked_by_consumers(n)}
        # SkipInit gain folded into the conv before it: alpha * conv(x, W) + alpha * b = conv(x, alpha W) + alpha b,
        # so d/d alpha comes from the weight gradient and the conv output is not kept for it
        gains = [n for n in graph.nodes if n.op == "call_module" and isinstance(self.submodules[n.target], SkipGain)]
        self.folded = {} if probes else {n.args[0]: n for n in gains if self._foldable(n.args[0])}

    def _fusable(self, node: fx.Node) -> bool:
        if not (self.key.fuse_relu and self.key.keep < 1 and self.key.encoding != "dense"):
            return False
        if not _is_relu(node, self.submodules):
            return False
        users = list(node.users)
        sap = [u for u in users if _is_sap_conv(u, self.submodules)]
        others = [u for u in users if u not in sap]
        return bool(sap) and all(self._is_add(u) for u in others)

    def _masked_by_consumers(self, relu: fx.Node) -> bool:
        """Every consumer of a fused ReLU is an im2col SAP conv: they apply its backward mask (``SapRelu``)."""
        if self.key.conv != "im2col":
            return False
        convs = [self.submodules[u.target] if _is_sap_conv(u, self.submodules) else None for u in relu.users]
        return all(c is not None and Im2colConv.supports(list(c.weight.shape), c.groups) for c in convs)

    def _is_add(self, node: fx.Node) -> bool:
        """An addition, also behind identity shortcuts (``nn.Identity`` modules)."""
        if node.op == "call_module" and isinstance(self.submodules[node.target], nn.Identity):
            return all(self._is_add(u) for u in node.users)
        return node.op == "call_function" and node.target in (operator.add, torch.add)

    def _foldable(self, node) -> bool:
        return (isinstance(node, fx.Node) and node.op == "call_module" and len(node.users) == 1
                and isinstance(self.submodules[node.target], MaskedConv2d))  # fmt: skip

    def forward(self, params: dict[str, Tensor], x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and, with ``probes``, the dense used weight of every prunable layer."""
        self.params, self.used, self.compressed = params, {}, {}
        return self.run(x), self.used

    def get_attr(self, target, args, kwargs):
        return self.params[target] if target in self.params else super().get_attr(target, args, kwargs)

    def run_node(self, node: fx.Node):
        if node in self.fusable:
            holder: list = []
            (z,) = self.map_nodes_to_values(node.args, node)
            out = SapRelu.apply(z, self.key.encoding, self.key.keep, holder, node in self.mask_in_consumers)
            self.compressed[node] = holder[0]
            return out
        if node.op == "call_module" and isinstance(self.submodules[node.target], nn.AdaptiveAvgPool2d):
            (x,) = self.map_nodes_to_values(node.args, node)
            return _adaptive_avg_pool(x, self.submodules[node.target].output_size)
        if node in self.folded.values():  # its conv already applied the gain
            return self.env[node.args[0]]
        if node.op == "call_module" and isinstance(self.submodules[node.target], SkipGain):  # not folded
            return self.env[node.args[0]] * self.params[f"{node.target}.alpha"]
        if node.op == "call_module" and isinstance(self.submodules[node.target], Prunable):
            (x,) = self.map_nodes_to_values(node.args, node)
            pre = self.compressed.get(node.args[0])
            gain = self.params[f"{self.folded[node].target}.alpha"] if node in self.folded else None
            return self._layer(node.target, self.submodules[node.target], x, pre, gain)
        return super().run_node(node)

    def _layer(self, name: str, layer: nn.Module, x: Tensor, pre, scale: Tensor | None = None) -> Tensor:
        bias = self.params.get(f"{name}.bias")
        weight = self._used_weight(name, layer)
        if scale is not None:
            weight = (weight[0] * scale, *weight[1:]) if isinstance(weight, tuple) else weight * scale
            bias = bias * scale if bias is not None else None
        positions = shape = None
        if self.probes and name in self._prunable:  # growth: the dense used weight's gradient is the output
            weight = self.used[name] = _dense(weight)
        elif isinstance(layer, MaskedLinear):
            weight = _dense(weight)
        elif isinstance(weight, tuple):  # packed: SapConv rebuilds the dense weight in backward
            weight, positions, shape = weight
        if isinstance(layer, MaskedLinear):
            return F.linear(x, weight, bias)
        conv = (layer.stride[0], layer.padding[0], layer.groups)
        return SapConv.apply(x, weight, bias, *conv, self.key.encoding, layer.keep, pre, positions, shape,
                             self.key.conv == "im2col")  # fmt: skip

    @property
    def _prunable(self) -> set[str]:
        return {name for name, _ in self.key.layer_nnz}

    def _used_weight(self, name: str, layer: nn.Module) -> Tensor | tuple[Tensor, Tensor, list[int]]:
        """The used weight: dense, or (packed used values, positions, dense shape) in the sparse layout.

        The masked layout's weight is zero off the mask by contract, so it is used as is (FedDST:
        no product with the mask to keep for backward; the update re-applies the mask).
        """
        p, shape = self.params, layer.weight.shape
        weight, gain = p[f"{name}.weight"], p.get(f"{name}.gain") if getattr(layer, "scaled", False) else None
        if name not in self._prunable or self.key.layout == "dense":  # depthwise convs are dense too
            return standardize(weight, filled(weight, weight.shape, 1.0), gain) if gain is not None else weight
        if self.key.layout == "masked":
            mask = p[f"{name}.mask"]
            return standardize(weight, mask, gain) if gain is not None else weight
        positions = p[f"{name}.positions"]
        values = packed_standardize(weight, positions, shape, gain) if gain is not None else weight
        return values, positions, list(shape)


def _dense(weight) -> Tensor:
    return scatter_weight(*weight) if isinstance(weight, tuple) else weight


def _adaptive_avg_pool(x: Tensor, size) -> Tensor:
    """Adaptive average pooling for evenly dividing sizes as reshape + mean (exports everywhere)."""
    oh, ow = (size, size) if isinstance(size, int) else size
    n, c, h, w = x.shape
    if (h, w) == (oh, ow):
        return x
    if h % oh or w % ow:
        raise ValueError(f"adaptive pooling {h}x{w} -> {oh}x{ow} needs evenly dividing sizes")
    return x.reshape(n, c, oh, h // oh, ow, w // ow).mean((3, 5))


def packed_standardize(values: Tensor, positions: Tensor, shape: torch.Size, gain: Tensor, eps: float = 1e-4) -> Tensor:
    """``activation_pruning.standardize`` computed on the packed values only (per output channel)."""
    return PackedStandardize.apply(values, positions, gain, shape[1:].numel(), eps)


def step_function(key: GraphKey, kind: str = "step"):
    """A function of the graph's inputs (the layout's order) returning its outputs (a tuple)."""
    if kind == "evaluate" and key.keep < 1:  # forward only: nothing is saved for backward
        key = replace(key, keep=1.0)
    model = key.build()
    layout = layout_of(key, model)
    names = list(layout.graph_inputs[kind])
    trainable = [s.name for s in layout.trainable]
    weights = {s.name: s.layer for s in layout.trainable if s.layer is not None}
    forward = SparseForward(model, key, probes=kind == "growth")

    def step(*tensors: Tensor) -> tuple[Tensor, ...]:
        inputs = dict(zip(names, tensors, strict=True))
        params = {n: inputs[n].detach().requires_grad_() if n in trainable else inputs[n] for n in names}
        logits, used = forward.forward(params, inputs[p.X])
        if kind == "evaluate":
            losses = F.cross_entropy(logits, inputs[p.Y], reduction="none")
            return losses, (logits.argmax(1) == inputs[p.Y]).float()
        loss = F.cross_entropy(logits, inputs[p.Y])
        if kind == "growth":
            sizes = growth_sizes(key)
            grads = torch.autograd.grad(loss, [used[layer] for layer in sizes])
            out = [loss.detach()]
            for (layer, k), grad in zip(sizes.items(), grads, strict=True):
                out += strongest_inactive(grad, inputs, layer, k)
            return tuple(out)
        lr = inputs[p.LR]
        if key.extrusion:
            marked = [effective_values(key, model.get_submodule(layer), layer, params) * inputs[f"{layer}.marked"]
                      for layer in weights.values()]  # fmt: skip
            lam, lr = extrusion_scalars(inputs, marked, lr)
            loss = loss + lam * penalty(marked, key.penalty)
        grads = torch.autograd.grad(loss, [params[n] for n in trainable])
        new = []
        for n, g in zip(trainable, grads, strict=True):
            param = params[n].detach()
            param = param - lr * (g + key.weight_decay * param)
            new.append(param * inputs[f"{weights[n]}.mask"] if key.layout == "masked" and n in weights else param)
        return (loss.detach(), *new)

    return step, layout


def extrusion_scalars(inputs: dict[str, Tensor], marked: list[Tensor], lr: Tensor) -> tuple[Tensor, Tensor]:
    """(lambda, lr) of this step, as ``extrusion.ExtrusionSchedule`` computes them (protocol §7)."""
    t = inputs[p.WINDOW_OFFSET] * inputs[p.STEPS] + inputs[p.STEP]
    total = inputs[p.STEPS] * inputs[p.WINDOW_ROUNDS]
    extrude = inputs[p.EXTRUDE]
    lam = extrude * inputs[p.LAMBDA_MAX] * torch.clamp((t + 1) / (inputs[p.LAMBDA_RAMP] * total), max=1.0)
    norm = sum(m.detach().abs().sum() for m in marked)
    beta = (2 * total - 2 * t) / (2 * total - t) * (2 * torch.sigmoid(norm) - 1) * inputs[p.BASE_LR]
    return lam, torch.maximum(lr, extrude * beta)


def penalty(marked: list[Tensor], form: str) -> Tensor:
    """sum_l ||w_marked,l||^2 ("squared") or sum_l ||w_marked,l||_2 ("norm", zero-safe gradient)."""
    squares = [(m * m).sum() for m in marked]
    if form == "squared":
        return sum(squares)
    return sum(torch.sqrt(torch.clamp(s, min=1e-30)) for s in squares)


def effective_values(key: GraphKey, layer: nn.Module, name: str, params: dict[str, Tensor]) -> Tensor:
    """A prunable layer's effective weight (``activation_pruning.effective_weight``), aligned with its
    trainable input, the NSConv gain held constant: what BaE penalises (protocol §7)."""
    weight = params[f"{name}.weight"]
    gain = params[f"{name}.gain"].detach() if getattr(layer, "scaled", False) else None
    if key.layout == "sparse":
        positions = params[f"{name}.positions"].long()
        return packed_standardize(weight, positions, layer.weight.shape, gain) if gain is not None else weight
    mask = params[f"{name}.mask"] if key.layout == "masked" else filled(weight, weight.shape, 1.0)
    return standardize(weight, mask, gain) if gain is not None else weight * mask


def strongest_inactive(grad: Tensor, inputs: dict[str, Tensor], layer: str, k: int) -> list[Tensor]:
    """The k largest |gradient| at inactive positions, largest first (TopK breaks ties by the smaller index)."""
    magnitude = grad.abs().reshape(-1)
    if f"{layer}.positions" in inputs:
        active = inputs[f"{layer}.positions"].long()
        magnitude = magnitude.scatter(0, active, filled(magnitude, active.shape, -1.0))
    else:
        magnitude = torch.where(inputs[f"{layer}.mask"].reshape(-1) > 0, -1.0, magnitude)
    values, indices = torch.topk(magnitude, k)
    return [indices.to(torch.int32), values]


def trace(key: GraphKey, example: list[Tensor], kind: str = "step") -> tuple[fx.GraphModule, Layout]:
    """The whole step (or the growth signal, or the evaluation) as an aten-level ``fx.GraphModule``."""
    step, layout = step_function(key, kind)
    return to_aten(step, example), layout


def to_aten(function, example: list[Tensor]) -> fx.GraphModule:
    """``function`` traced to aten with the losses decomposed and no detach/alias nodes."""
    gm = make_fx(function, decomposition_table=DECOMPOSITIONS, tracing_mode="fake")(*example)
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target in _DROP:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm
