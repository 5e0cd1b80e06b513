"""The paper's memory accounting (FedMef §4.3, Table 3): an estimate, not a runtime measurement.

Training memory = parameters + gradients + optimizer state + activations saved for backward.
Three ways to hold a sparse model are compared:

* ``dense`` — every weight trainable (FedAvg);
* ``masked-dense`` — dense weight tensors multiplied by a mask (FedDST-style); the mask costs a
  byte per weight, gradients are dense;
* ``fedmef`` — packed sparse weights (values + int32 positions), gradients only for active
  values, SAP convs saving top-k inputs.

Activation bytes are not guessed from layer shapes: they are the unique storages autograd saves
for backward on one batch (``torch.autograd.graph.saved_tensors_hooks``), parameters excluded.
The runtime measurements in ``benchmarks/memory.py`` sit beside this estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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


def estimate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layout: str, momentum: bool = False) -> MemoryEstimate:
    """Memory of one training step of ``model`` on batch (x, y) under ``layout``.

    ``layout`` is ``dense``, ``masked-dense`` or ``fedmef``; the model's masks give the nnz and
    its convs' keep fraction decides what the activations cost.
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
        activations=saved_activation_bytes(model, x, y),
    )
