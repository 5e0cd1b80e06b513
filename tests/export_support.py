"""Shared helpers of the export tests: seeded models with masks, batches, and the eager step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from fedmef import extrusion
from export.layout import GraphKey
from fedmef.models import prunable_layers
from fedmef.sparsity import random_masks

DENSITY = 0.3


def keyed_model(key: GraphKey, seed: int = 0) -> tuple[GraphKey, torch.nn.Module]:
    """A model of ``key``'s architecture with seeded weights and ERK masks; the key gets its nnz."""
    torch.manual_seed(seed)
    model = replace(key, layer_nnz=()).build()
    layers = prunable_layers(model)
    density = 1.0 if key.layout == "dense" else DENSITY
    masks = random_masks({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density,
                         torch.Generator().manual_seed(seed))  # fmt: skip
    with torch.no_grad():
        for name, layer in layers.items():
            layer.mask.copy_(masks[name].float())
            layer.weight.mul_(layer.mask)
        for module in model.modules():  # SkipInit starts at 0; make residual branches count
            if hasattr(module, "alpha"):
                module.alpha.fill_(0.5)
    nnz = tuple((n, int(layer.mask.sum())) for n, layer in layers.items())
    return replace(key, layer_nnz=nnz), model


def batch(key: GraphKey, seed: int = 1, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    n = count or key.batch_size
    x = gen.standard_normal((n, *key.input_shape)).astype(np.float32)
    return x, gen.integers(0, key.num_classes, n).astype(np.int64)


def marked_sets(model: torch.nn.Module, fraction: float = 0.2) -> dict[str, torch.Tensor]:
    weights = {n: layer.weight for n, layer in prunable_layers(model).items()}
    masks = {n: layer.mask.bool() for n, layer in prunable_layers(model).items()}
    return extrusion.marked_sets(weights, masks, fraction)


def eager_step(model, x, y, lr: float, lam: float, marked: dict, weight_decay: float = 0.0) -> float:
    """One step with ``fedmef.training.local_train``'s exact update rule."""
    layers = prunable_layers(model)
    weights = {n: layer.weight for n, layer in layers.items()}
    model.train()
    loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    if lam:
        loss = loss + extrusion.penalty(extrusion.marked_values(weights, marked), lam, "squared")
    model.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            if param.grad is not None:
                param.sub_(lr * (param.grad + weight_decay * param))
        for layer in layers.values():
            layer.weight.mul_(layer.mask)
    return float(loss.detach())


def assert_close_state(actual: dict, expected: dict, names, rtol: float = 1e-4) -> None:
    for name in names:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        scale = max(float(np.abs(e).max()), 1e-6)
        err = float(np.abs(a - e).max()) / scale
        assert err <= rtol, f"{name}: relative error {err:.2e} > {rtol}"
