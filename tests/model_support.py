"""A small masked model shared by the unit tests."""

from __future__ import annotations

import torch

from fedmef.models import ConvSpec, SmallCNN, prunable_layers, set_masks
from fedmef.sparsity import random_masks


def masked_cnn(density: float, scaled: bool = False, seed: int = 0) -> SmallCNN:
    """SmallCNN of width 2 with seeded ERK masks at ``density`` and pruned weights zeroed."""
    torch.manual_seed(seed)
    model = SmallCNN(ConvSpec(scaled=scaled), width=2)
    layers = prunable_layers(model)
    shapes = {n: tuple(layer.weight.shape) for n, layer in layers.items()}
    set_masks(model, random_masks(shapes, density, torch.Generator().manual_seed(seed)))
    return model
