"""The run's task: initial model (ERK masks, fan-in-aware initialisation) and data shares."""

from __future__ import annotations

import math

import pytest
import torch

from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.partitions import partition
from fedmef.sparsity import erk_densities
from fedmef.task import initial_model


@pytest.mark.parametrize("method", ["feddst", "fedmef"])
def test_initial_model_has_erk_masks_and_zero_pruned_weights(method):
    config = RunConfig(method=method, density=0.1)
    layers = prunable_layers(initial_model(config))
    densities = erk_densities({n: tuple(layer.weight.shape) for n, layer in layers.items()}, 0.1)
    for name, layer in layers.items():
        assert int(layer.mask.sum()) == max(1, round(densities[name] * layer.weight.numel())), name
        assert torch.all(layer.weight[layer.mask == 0] == 0), name


def test_unscaled_sparse_layers_get_he_init_on_active_fan_in():
    layers = prunable_layers(initial_model(RunConfig(method="feddst", density=0.1, model_width=64.0)))
    conv = layers["conv3"]  # a sparse 3x3 conv
    active = conv.weight[conv.mask.bool()]
    fan_in = float(conv.mask.sum()) / conv.mask.shape[0]
    assert active.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.1)


def test_same_seed_same_model_and_dense_methods_have_full_masks():
    a, b = initial_model(RunConfig(seed=3)), initial_model(RunConfig(seed=3))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    dense = prunable_layers(initial_model(RunConfig(method="fedavg")))
    assert all(bool(layer.mask.all()) for layer in dense.values())


def test_partitions_are_disjoint_shares_of_the_training_split():
    config = RunConfig()
    shares = [partition(config, i, 4) for i in range(4)]
    sizes = [len(s.train) + len(s.validation) for s in shares]
    assert all(size > 0 for size in sizes)
    assert sum(sizes) == round(1797 * (1 - config.test_fraction))
