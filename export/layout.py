"""What an exported graph is for and what its inputs look like: ``GraphKey`` and the ``Layout``.

A graph depends only on the :class:`GraphKey` — model, width, method flags, batch and input shape,
and the per-layer nnz, which prune/grow keeps constant — so one export serves every round and a
round only ships state. The layout names every graph input with its role in the contract
(``docs/protocol.md`` §6), which is how a client builds feeds from the wire arrays:

* ``<layer>.weight``    ``values``: packed active values (nnz,) in the sparse layout, else
  ``weight``: the dense weight;
* ``<layer>.positions`` ``positions``: int32 flat indices of the packed values (sparse layout);
* ``<layer>.mask``      ``mask``: float 0/1 dense mask (masked layout);
* ``<layer>.marked``    ``marked``: float 0/1 aligned with the weight: the BaE marked set
  (only when the key extrudes: FedDST-style baselines carry no marked tensors);
* every other parameter (biases, NSConv gains, SkipInit alphas, depthwise weights): ``param``;
* ``x``, ``y`` (``data``), the plan's scalars (``plan``), ``step``/``steps`` (``counter``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from fedmef import protocol as p
from fedmef.manifest import TensorSpec
from fedmef.models import ConvSpec, build_model, prunable_layers
from fedmef.sparsity import erk_densities

from .sap import ENCODINGS

LAYOUTS = ("dense", "masked", "sparse")
TRAINABLE_ROLES = ("values", "weight", "param")
#: plan scalars the step graph takes when it extrudes (docs/protocol.md §3, §7)
EXTRUSION_PLAN = (p.BASE_LR, p.EXTRUDE, p.LAMBDA_MAX, p.LAMBDA_RAMP, p.WINDOW_OFFSET, p.WINDOW_ROUNDS)


@dataclass(frozen=True)
class GraphKey:
    model: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    batch_size: int
    layer_nnz: tuple[tuple[str, int], ...]
    width: float | None = None
    scaled: bool = False
    keep: float = 1.0
    layout: str = "sparse"
    encoding: str = "int32"  # how SAP saves activations: int32 positions or a 1-bit mask
    fuse_relu: bool = True
    weight_decay: float = 0.0
    #: BaE: marked-set inputs, the penalty and the budget-aware learning rate inside the step
    extrusion: bool = False
    penalty: str = "squared"
    #: convolution form: "direct" (conv ops) or "im2col" (index_select + mm: ExecuTorch's fast kernels,
    #: at the cost of a k*k-times larger transient per conv)
    conv: str = "direct"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.penalty not in ("squared", "norm"):
            raise ValueError(f"penalty must be 'squared' or 'norm', got {self.penalty!r}")
        if self.conv not in ("direct", "im2col"):
            raise ValueError(f"conv must be 'direct' or 'im2col', got {self.conv!r}")

    @property
    def sparse(self) -> bool:
        return self.layout == "sparse"

    def build(self) -> nn.Module:
        conv = ConvSpec(self.scaled, self.keep)
        return build_model(self.model, conv, self.input_shape[0], self.num_classes, self.width)

    def to_dict(self) -> dict:
        """JSON-ready form (lists for tuples), as stored in the manifest."""
        return json.loads(json.dumps(asdict(self)))

    @staticmethod
    def from_dict(data: dict) -> GraphKey:
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        data["layer_nnz"] = tuple((name, int(nnz)) for name, nnz in data["layer_nnz"])
        return GraphKey(**data)

    def digest(self) -> str:
        """A short stable name for the cache directory."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @staticmethod
    def for_model(model: nn.Module, name: str, batch_size: int, input_shape: tuple[int, int, int],
                  num_classes: int, **flags) -> GraphKey:  # fmt: skip
        """The key of ``model`` with its current masks (nnz per prunable layer)."""
        nnz = tuple((n, int(layer.mask.sum())) for n, layer in prunable_layers(model).items())
        return GraphKey(name, tuple(input_shape), num_classes, batch_size, nnz, **flags)


@dataclass(frozen=True)
class Layout:
    """Every graph input once (``tensors``) and, per graph, the input order and the outputs."""

    tensors: tuple[TensorSpec, ...]
    graph_inputs: dict[str, tuple[str, ...]]
    outputs: dict[str, tuple[TensorSpec, ...]]
    prunable: tuple[str, ...]

    def inputs(self, graph: str) -> list[TensorSpec]:
        """The graph's inputs in feeding order (the manifest's ``Manifest.inputs``)."""
        by_name = {t.name: t for t in self.tensors}
        return [by_name[name] for name in self.graph_inputs[graph]]

    @property
    def trainable(self) -> list[TensorSpec]:
        return [t for t in self.tensors if t.role in TRAINABLE_ROLES]


def layout_of(key: GraphKey, model: nn.Module | None = None) -> Layout:
    model = model if model is not None else key.build()
    layers = prunable_layers(model)
    nnz = dict(key.layer_nnz)
    if set(nnz) != set(layers):
        raise ValueError(f"layer_nnz names {sorted(nnz)} do not match the model's {sorted(layers)}")
    state: list[TensorSpec] = []
    marked: list[TensorSpec] = []
    for pname, param in model.named_parameters():
        layer = pname.removesuffix(".weight")
        shape = tuple(param.shape)
        if layer not in layers or not pname.endswith(".weight"):
            state.append(TensorSpec(pname, "param", "float32", shape))
            continue
        if not 0 < nnz[layer] <= math.prod(shape):
            raise ValueError(f"layer {layer}: nnz {nnz[layer]} outside (0, {math.prod(shape)}]")
        stored = (nnz[layer],) if key.sparse else shape
        state.append(TensorSpec(pname, "values" if key.sparse else "weight", "float32", stored, layer, shape))
        if key.sparse:
            state.append(TensorSpec(f"{layer}.positions", "positions", "int32", stored, layer, shape))
        if key.layout == "masked":
            state.append(TensorSpec(f"{layer}.mask", "mask", "float32", shape, layer, shape))
        if key.extrusion:
            marked.append(TensorSpec(f"{layer}.marked", "marked", "float32", stored, layer, shape))
    c, h, w = key.input_shape
    data = [TensorSpec(p.X, "data", "float32", (key.batch_size, c, h, w)),
            TensorSpec(p.Y, "data", "int64", (key.batch_size,))]  # fmt: skip
    plan = [TensorSpec(p.LR, "plan", "float32", ())]
    if key.extrusion:
        plan += [TensorSpec(name, "plan", "float32", ()) for name in EXTRUSION_PLAN]
        plan += [TensorSpec(name, "counter", "float32", ()) for name in (p.STEP, p.STEPS)]
    trainable = [t for t in state if t.role in TRAINABLE_ROLES]
    step_outputs = [TensorSpec("loss", "loss", "float32", ())]
    step_outputs += [TensorSpec(p.NEXT + t.name, "update", "float32", t.shape, of=t.name) for t in trainable]
    forward = tuple(t.name for t in state + data)
    inputs = {"step": tuple(t.name for t in state + marked + data + plan), "evaluate": forward}
    outputs = {"step": tuple(step_outputs), "evaluate": (
        TensorSpec("losses", "losses", "float32", (key.batch_size,)),
        TensorSpec("correct", "correct", "float32", (key.batch_size,)),
    )}  # fmt: skip
    growth = [TensorSpec("loss", "loss", "float32", ())]
    for layer, k in growth_sizes(key).items():
        growth += [TensorSpec(p.GROW_INDICES + layer, "growth-indices", "int32", (k,), layer),
                   TensorSpec(p.GROW_MAGNITUDES + layer, "growth-magnitudes", "float32", (k,), layer)]  # fmt: skip
    if len(growth) > 1:
        inputs["growth"], outputs["growth"] = forward, tuple(growth)
    return Layout(tuple(state + marked + data + plan), inputs, outputs, tuple(layers))


def growth_sizes(key: GraphKey) -> dict[str, int]:
    """Per prunable layer with inactive weights, how many growth candidates the growth graph returns:
    every adjustment grows at most min(active, inactive) weights of a layer."""
    if key.layout == "dense":
        return {}
    sizes = {}
    for layer, shape in _dense_shapes(key).items():
        nnz = dict(key.layer_nnz)[layer]
        if math.prod(shape) > nnz:
            sizes[layer] = min(nnz, math.prod(shape) - nnz)
    return sizes


def _dense_shapes(key: GraphKey) -> dict[str, tuple[int, ...]]:
    return {name: tuple(layer.weight.shape) for name, layer in prunable_layers(key.build()).items()}


def erk_nnz(model: nn.Module, density: float) -> tuple[tuple[str, int], ...]:
    """Per-layer nnz of ERK masks at ``density`` (what ``sparsity.random_masks`` would draw)."""
    layers = prunable_layers(model)
    densities = erk_densities({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density)
    return tuple((n, max(1, round(densities[n] * layer.weight.numel()))) for n, layer in layers.items())


def example_inputs(specs: list[TensorSpec], num_classes: int, seed: int = 0) -> list[torch.Tensor]:
    """Valid random inputs (distinct sorted positions) for tracing and tests."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        if spec.role == "positions":
            numel = math.prod(spec.dense_shape)
            out.append(torch.randperm(numel, generator=gen)[: spec.shape[0]].sort().values.to(torch.int32))
        elif spec.role in ("mask", "marked"):
            out.append((torch.rand(spec.shape, generator=gen) < 0.5).float())
        elif spec.name == p.Y:
            out.append(torch.randint(0, num_classes, spec.shape, generator=gen))
        elif spec.role == "counter":
            out.append(torch.tensor(1.0 if spec.name == p.STEP else 4.0))
        elif spec.role == "plan":
            out.append(torch.tensor(0.05))
        else:
            out.append(torch.randn(spec.shape, generator=gen) * 0.1)
    return out
