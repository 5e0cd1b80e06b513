"""The run's task, as Flower's quickstart calls it: the model and data a run config asks for.

Server and clients both call these, so a run config alone fixes the model architecture, the
initial ERK masks (seeded) and every client's data share.
"""

from __future__ import annotations

import torch
from torch import nn

from fedmef.config import RunConfig
from fedmef.data import Split, load_dataset
from fedmef.models import ConvSpec, build_model, prunable_layers, set_masks
from fedmef.sparsity import random_masks, sparse_init_scale

INPUT_SHAPES = {"digits": (1, 8, 8), "cifar10": (3, 32, 32)}
NUM_CLASSES = 10


def make_model(config: RunConfig) -> nn.Module:
    conv = ConvSpec(scaled=config.flags.scaled, keep=config.sap_keep)
    width = config.model_width or None
    return build_model(config.model, conv, INPUT_SHAPES[config.dataset][0], NUM_CLASSES, width)


def initial_model(config: RunConfig) -> nn.Module:
    """The round-0 global model: seeded weights and, for sparse methods, ERK masks.

    Layers without weight standardisation get He initialisation scaled to their active fan-in
    (a BN-free ReLU network at density 0.1 otherwise starts with a vanishing signal): every
    baseline gets this, not only FedMef. NSConv layers keep PyTorch's default initialisation:
    standardisation removes the scale, and a small raw weight keeps their effective step large.
    """
    torch.manual_seed(config.seed)
    model = make_model(config)
    layers = prunable_layers(model)
    if config.flags.sparse:
        shapes = {name: tuple(layer.weight.shape) for name, layer in layers.items()}
        set_masks(model, random_masks(shapes, config.density, torch.Generator().manual_seed(config.seed)))
    with torch.no_grad():
        for layer in layers.values():
            if not getattr(layer, "scaled", False):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                layer.weight.mul_(sparse_init_scale(layer.mask))
            layer.weight.mul_(layer.mask)
    return model


def test_set(config: RunConfig) -> Split:
    return load_dataset(config.dataset, config.data_path, config.test_fraction, config.seed)[1]


def tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(split.x), torch.from_numpy(split.y)
