"""Convert between an eager model (weights + masks) and the flat state an exported graph takes.

``state_of(model, layout)`` packs each prunable layer's active weights (ascending flat
positions) and ``load_state(model, layout, state)`` writes a state back (dense weight with zeros
at pruned positions, masks rebuilt from the positions). ``marked_state`` turns the server's BaE
marked sets (flat indices into the dense weight) into the per-layer 0/1 vectors the graph takes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from fedmef.models import prunable_layers

from .layout import Layout

State = dict[str, np.ndarray]


def state_of(model: nn.Module, layout: Layout, marked: dict[str, torch.Tensor] | None = None) -> State:
    """The graph state of ``model`` (marked sets empty unless given)."""
    params = dict(model.named_parameters())
    layers = prunable_layers(model)
    state: State = {}
    for spec in layout.state:
        layer = spec.name.rsplit(".", 1)[0]
        if spec.role == "trainable" and spec.dense_shape is not None and spec.shape != spec.dense_shape:
            flat, positions = params[spec.name].detach().flatten(), _positions(layers[layer].mask)
            if positions.numel() != spec.shape[0]:
                raise ValueError(f"{layer}: mask has {positions.numel()} active weights, graph expects {spec.shape[0]}")
            state[spec.name] = flat[positions].numpy().astype(np.float32)
        elif spec.role == "trainable":
            state[spec.name] = params[spec.name].detach().numpy().astype(np.float32).copy()
        elif spec.role == "positions":
            state[spec.name] = _positions(layers[layer].mask).numpy().astype(np.int32)
        elif spec.role == "mask":
            state[spec.name] = layers[layer].mask.numpy().astype(np.float32).copy()
    state.update(marked_state(layout, state, marked or {}))
    return state


def marked_state(layout: Layout, state: State, marked: dict[str, torch.Tensor]) -> State:
    """Per layer a 0/1 float vector over the stored weight: 1 where the flat index is marked."""
    out: State = {}
    for spec in layout.state:
        if spec.role != "marked":
            continue
        layer = spec.name.rsplit(".", 1)[0]
        indices = np.asarray(marked.get(layer, np.empty(0, dtype=np.int64)), dtype=np.int64).reshape(-1)
        dense = np.zeros(math.prod(spec.dense_shape), dtype=np.float32)
        dense[indices] = 1.0
        if spec.shape == spec.dense_shape:
            out[spec.name] = dense.reshape(spec.shape)
        else:
            out[spec.name] = dense[state[f"{layer}.positions"]]
    return out


def load_state(model: nn.Module, layout: Layout, state: State) -> None:
    """Write ``state`` into ``model`` in place: weights, and masks from positions or mask inputs."""
    params = dict(model.named_parameters())
    layers = prunable_layers(model)
    with torch.no_grad():
        for spec in layout.state:
            layer = spec.name.rsplit(".", 1)[0]
            if spec.role == "trainable" and spec.dense_shape is not None and spec.shape != spec.dense_shape:
                positions = torch.from_numpy(state[f"{layer}.positions"].astype(np.int64))
                weight = torch.zeros(math.prod(spec.dense_shape))
                weight[positions] = torch.from_numpy(state[spec.name])
                params[spec.name].copy_(weight.view(spec.dense_shape))
                mask = torch.zeros(math.prod(spec.dense_shape))
                mask[positions] = 1.0
                layers[layer].mask.copy_(mask.view(spec.dense_shape))
            elif spec.role == "trainable":
                params[spec.name].copy_(torch.from_numpy(state[spec.name]))
            elif spec.role == "mask":
                layers[layer].mask.copy_(torch.from_numpy(state[spec.name]))


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask.flatten() != 0).flatten()
