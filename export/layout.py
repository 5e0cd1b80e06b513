"""What an exported graph is for and what its inputs look like: ``GraphKey`` and the tensor layout.

A graph depends only on the :class:`GraphKey` — model, width, method flags, batch and input shape,
and the per-layer nnz, which prune/grow keeps constant — so one export serves every round and a
round only ships state. The state is a flat ``{name: array}`` dict:

* ``<layer>.weight``    trainable: packed active values (nnz,) when ``layout == "sparse"``,
  else the dense weight;
* ``<layer>.positions`` int32 flat indices of the packed values (sparse; constant per round);
* ``<layer>.mask``      float 0/1 dense mask (``layout == "masked"``; constant per round);
* ``<layer>.marked``    float 0/1, same shape as ``<layer>.weight``: the BaE marked set;
* every other parameter (biases, NSConv gains, SkipInit alphas, depthwise weights) dense.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from fedmef.models import ConvSpec, build_model, prunable_layers
from fedmef.sparsity import erk_densities

from .sap import ENCODINGS

LAYOUTS = ("dense", "masked", "sparse")
DATA_INPUTS = ("x", "y", "lr", "lam")


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
    #: convolution form: "direct" (conv ops) or "im2col" (slicing + mm: ExecuTorch's fast kernels,
    #: at the cost of a k*k-times larger transient per conv)
    conv: str = "direct"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
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
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name
    role: str  # trainable | positions | mask | marked | data
    dense_shape: tuple[int, ...] | None = None  # the layer weight a packed tensor scatters into


@dataclass(frozen=True)
class Layout:
    """Ordered graph inputs (state, then x, y, lr, lam); outputs are loss + updated trainables."""

    inputs: tuple[TensorSpec, ...]
    prunable: tuple[str, ...] = field(default=())

    @property
    def trainable(self) -> list[TensorSpec]:
        return [s for s in self.inputs if s.role == "trainable"]

    @property
    def state(self) -> list[TensorSpec]:
        return [s for s in self.inputs if s.role != "data"]

    @staticmethod
    def from_manifest(manifest) -> Layout:
        """The layout a manifest describes (clients have the manifest, not the model)."""
        specs = tuple(
            TensorSpec(t.name, tuple(t.shape), t.dtype, t.role, tuple(t.dense_shape) if t.dense_shape else None)
            for t in manifest.inputs
        )
        return Layout(specs, tuple(name.removeprefix("grad.") for name in manifest.outputs["growth"][1:]))

    def outputs(self, kind: str) -> list[str]:
        if kind == "step":
            return ["loss"] + [f"next.{s.name}" for s in self.trainable]
        return ["loss"] + [f"grad.{name}" for name in self.prunable]


def layout_of(key: GraphKey, model: nn.Module | None = None) -> Layout:
    model = model if model is not None else key.build()
    layers = prunable_layers(model)
    nnz = dict(key.layer_nnz)
    if set(nnz) != set(layers):
        raise ValueError(f"layer_nnz names {sorted(nnz)} do not match the model's {sorted(layers)}")
    specs: list[TensorSpec] = []
    for pname, param in model.named_parameters():
        layer = pname.removesuffix(".weight")
        shape = tuple(param.shape)
        if layer not in layers or not pname.endswith(".weight"):
            specs.append(TensorSpec(pname, shape, "float32", "trainable"))
            continue
        if not 0 < nnz[layer] <= math.prod(shape):
            raise ValueError(f"layer {layer}: nnz {nnz[layer]} outside (0, {math.prod(shape)}]")
        stored = (nnz[layer],) if key.sparse else shape
        specs.append(TensorSpec(pname, stored, "float32", "trainable", shape))
        if key.sparse:
            specs.append(TensorSpec(f"{layer}.positions", stored, "int32", "positions", shape))
        if key.layout == "masked":
            specs.append(TensorSpec(f"{layer}.mask", shape, "float32", "mask", shape))
        specs.append(TensorSpec(f"{layer}.marked", stored, "float32", "marked", shape))
    c, h, w = key.input_shape
    specs += [
        TensorSpec("x", (key.batch_size, c, h, w), "float32", "data"),
        TensorSpec("y", (key.batch_size,), "int64", "data"),
        TensorSpec("lr", (), "float32", "data"),
        TensorSpec("lam", (), "float32", "data"),
    ]
    return Layout(tuple(specs), tuple(layers))


def erk_nnz(model: nn.Module, density: float) -> tuple[tuple[str, int], ...]:
    """Per-layer nnz of ERK masks at ``density`` (what ``sparsity.random_masks`` would draw)."""
    layers = prunable_layers(model)
    densities = erk_densities({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density)
    return tuple((n, max(1, round(densities[n] * layer.weight.numel()))) for n, layer in layers.items())


def example_inputs(layout: Layout, num_classes: int, seed: int = 0) -> list[torch.Tensor]:
    """Valid random inputs (distinct sorted positions) for tracing and tests."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in layout.inputs:
        if spec.role == "positions":
            numel = math.prod(spec.dense_shape)
            out.append(torch.randperm(numel, generator=gen)[: spec.shape[0]].sort().values.to(torch.int32))
        elif spec.role in ("mask", "marked"):
            out.append((torch.rand(spec.shape, generator=gen) < 0.5).float())
        elif spec.name == "y":
            out.append(torch.randint(0, num_classes, spec.shape, generator=gen))
        elif spec.name in ("lr", "lam"):
            out.append(torch.tensor(0.05))
        else:
            out.append(torch.randn(spec.shape, generator=gen) * 0.1)
    return out
