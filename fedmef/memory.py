"""The paper's memory accounting (FedMef §4.3, Table 3): an estimate, not a runtime measurement.

Training memory = parameters + gradients + optimizer state + activations saved for backward.
Three ways to hold a sparse model are compared:

* ``dense`` — every weight trainable (FedAvg);
* ``masked-dense`` — dense weight tensors multiplied by a mask (FedDST-style); the mask costs a
  byte per weight, gradients are dense;
* ``fedmef`` — packed sparse weights (values + int32 positions), gradients only for active
  values, SAP convs saving top-k inputs.

Activations are counted as the paper does: the input each conv/linear layer keeps for its weight
gradient, compressed for SAP convs (``layer_input_bytes``). What eager PyTorch really keeps is
measured separately by ``saved_activation_bytes`` (autograd's saved tensors on one batch); the
runtime measurements in ``benchmarks/memory.py`` sit beside both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fedmef.activation_pruning import Prunable, kept_count
from fedmef.models import prunable_layers

FLOAT, INDEX = 4, 4


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations


def saved_activation_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd keeps for backward in one training forward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    del loss
    return sum(storages.values())


def layer_input_bytes(model: nn.Module, x: torch.Tensor, positions: str = "int32") -> int:
    """Bytes of every prunable layer's input as the paper counts activations (§4.3).

    A dense layer keeps its whole float input for the weight gradient; a SAP conv (keep < 1)
    keeps ceil(keep * D) values per sample plus their positions: int32 each, or one bit per
    element of the input (``positions="bits"``).
    """
    if positions not in ("int32", "bits"):
        raise ValueError(f"positions must be 'int32' or 'bits', got {positions!r}")
    sizes: list[int] = []

    def record(layer, inputs, output):
        (inp,) = inputs
        per_sample = inp[0].numel()
        keep = getattr(layer, "keep", 1.0)
        if keep >= 1.0:
            sizes.append(FLOAT * inp.numel())
            return
        kept = kept_count(per_sample, keep)
        index = INDEX * kept if positions == "int32" else -(-per_sample // 8)
        sizes.append(inp.shape[0] * (FLOAT * kept + index))

    hooks = [layer.register_forward_hook(record) for layer in _all_masked(model)]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(sizes)


def _all_masked(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, Prunable)]


def estimate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, layout: str, momentum: bool = False, positions: str = "int32"
) -> MemoryEstimate:
    """Memory of one training step of ``model`` on batch (x, y) under ``layout``.

    ``layout`` is ``dense``, ``masked-dense`` or ``fedmef``; the model's masks give the nnz and
    its convs' keep fraction what the activations cost (``layer_input_bytes``). ``y`` is unused
    by the estimate and kept so the signature matches ``saved_activation_bytes``.
    """
    layers = prunable_layers(model)
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(layer.weight.numel() for layer in layers.values())
    active = sum(int(layer.mask.sum()) for layer in layers.values())
    if layout == "dense":
        params, trainable = FLOAT * total, total
    elif layout == "masked-dense":
        params, trainable = FLOAT * total + prunable, total
    elif layout == "fedmef":
        trainable = total - prunable + active
        params = FLOAT * trainable + INDEX * active
    else:
        raise ValueError(f"unknown layout {layout!r}; choose dense, masked-dense or fedmef")
    return MemoryEstimate(
        parameters=params,
        gradients=FLOAT * trainable,
        optimizer=FLOAT * trainable if momentum else 0,
        activations=layer_input_bytes(model, x, positions),
    )
