"""FedDST as published: the client's prune/regrow, the server's sample-weighted mask vote and re-prune."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedmef import feddst, wire
from fedmef import protocol as p
from fedmef.activation_pruning import MaskedLinear
from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.task import initial_model
from fedmef.training import growth_signal
from python_client import client_app
from python_client.artifacts import ArtifactStore
from python_client.rounds import GraphBackend
from server.schedule import local_plan, round_phase


def linear(weight: list[list[float]], mask: list[list[int]]) -> nn.Module:
    model = nn.Sequential(MaskedLinear(len(weight[0]), len(weight), bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(weight))
        model[0].mask.copy_(torch.tensor(mask, dtype=torch.float32))
    return model


def test_client_prunes_smallest_magnitude_and_regrows_by_gradient_at_zero():
    model = linear([[0.5, -0.1, 0.0, 0.3, 0.0, -0.05]], [[1, 1, 0, 1, 0, 1]])
    x, y = torch.tensor([[1.0, -2.0, 3.0, 0.5, -1.0, 2.0]]), torch.tensor([0])
    grown = set(growth_signal(model, x, y, {"0": 2})["0"][0].tolist())
    assert grown == {2, 4}  # the only inactive positions
    feddst.readjust(model, x, y, {"0": 2})
    layer = prunable_layers(model)["0"]
    assert layer.mask.flatten().tolist() == [1, 0, 1, 1, 1, 0]  # pruned |w| 0.05 and 0.1, grew 2 and 4
    assert layer.weight.flatten().tolist() == pytest.approx([0.5, 0.0, 0.0, 0.3, 0.0, 0.0])


def test_client_regrows_the_largest_hand_computed_gradients():
    weight = [[0.5, 0.0, 0.0, 0.3], [0.0, 0.0, 0.2, 0.0], [0.0, 0.0, 0.0, -0.4]]
    mask = [[1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]]
    x, y = torch.tensor([[1.0, 5.0, -0.5, 2.0]]), torch.tensor([1])
    # d CE / d W = (softmax(W x) - onehot(y)) x^T for a bias-free linear layer
    dz = torch.softmax(torch.tensor(weight) @ x[0], 0) - torch.tensor([0.0, 1.0, 0.0])
    grad = (dz[:, None] * x[0][None, :]).abs().flatten()
    inactive = [i for i, m in enumerate(sum(mask, [])) if not m]
    expected_growth = sorted(inactive, key=lambda i: -float(grad[i]))[:2]
    model = linear(weight, mask)
    feddst.readjust(model, x, y, {"0": 2})
    flat = prunable_layers(model)["0"].mask.flatten()
    kept = {0, 11}  # pruned the two smallest |w|: 0.2 (flat 6) and 0.3 (flat 3)
    assert set(flat.nonzero().flatten().tolist()) == kept | set(expected_growth)
    assert all(prunable_layers(model)["0"].weight.flatten()[i] == 0 for i in expected_growth)


def test_vote_average_hand_computed():
    updates = [
        ({"m/w": p.mask_bits(np.array([1, 1, 0, 0])), "v/w": np.array([1.0, 2.0], np.float32),
          "d/b": np.array([0.0], np.float32)}, 1),
        ({"m/w": p.mask_bits(np.array([0, 1, 1, 0])), "v/w": np.array([4.0, 0.0], np.float32),  # 2: regrown at 0
          "d/b": np.array([4.0], np.float32)}, 3),
    ]  # fmt: skip
    out = feddst.vote_average(updates, {"w": 4})
    assert p.active_positions(out["m/w"], 4).tolist() == [0, 1, 2]  # the union: one vote suffices
    assert out["v/w"].dtype == np.float32 and out["v/w"].tolist() == [1.0, (2 + 3 * 4) / 4, 0.0]
    assert out["votes/w"].tolist() == [0.25, 1.0, 0.75]
    assert out["d/b"].tolist() == [3.0]


def test_vote_average_needs_every_clients_mask():
    with pytest.raises(ValueError, match="lacks its mask m/w"):
        feddst.vote_average([({"v/w": np.zeros(2, np.float32)}, 1)], {"w": 4})


def test_reprune_keeps_largest_magnitudes_then_votes_then_larger_index():
    model = linear([[1.0, 0.0, 0.0, 5.0, 0.0, -2.0]], [[1, 1, 1, 1, 1, 1]])
    # the zeros at 1, 2, 4 are regrown weights; 2 has more votes than 1 and 4 (equal)
    feddst.reprune(model, {"0": np.array([1.0, 0.25, 0.75, 1.0, 0.25, 1.0])}, {"0": 4})
    assert prunable_layers(model)["0"].mask.flatten().tolist() == [1, 0, 1, 1, 0, 1]
    model = linear([[1.0, 0.0, 0.0, 5.0, 0.0, -2.0]], [[1, 1, 1, 1, 1, 1]])
    feddst.reprune(model, {"0": np.array([1.0, 0.25, 0.75, 1.0, 0.25, 1.0])}, {"0": 5})
    assert prunable_layers(model)["0"].mask.flatten().tolist() == [1, 0, 1, 1, 1, 1]  # equal votes: 1 before 4
    model = linear([[1.0, 0.0, 3.0]], [[1, 0, 1]])
    feddst.reprune(model, {"0": np.array([1.0, 1.0])}, {"0": 2})  # already at the target: unchanged
    assert prunable_layers(model)["0"].mask.flatten().tolist() == [1, 0, 1]


def test_eager_client_readjusts_and_replies_with_its_masks(tmp_path):
    config = RunConfig(method="feddst", backend="torch", num_rounds=4, adjust_interval=2, adjust_end_fraction=1.0,
                       local_epochs=1, batch_size=16)  # fmt: skip
    model = initial_model(config)
    scalars, marked = wire.encode_plan(local_plan(config, round_phase(config, 2), model), 2)
    assert marked == {} and any(key.startswith(p.READJUST) for key in scalars)
    node = {"partition-id": 0, "num-partitions": 3}
    update, _ = client_app.local_round(config, node, ArtifactStore(tmp_path), wire.encode_state(model), scalars, {})
    changed = 0
    for name, layer in prunable_layers(model).items():
        positions = p.active_positions(update[p.MASK + name], layer.mask.numel())
        assert len(positions) == len(update[p.VALUES + name]) == int(layer.mask.sum())
        changed += len(set(positions.tolist()) ^ set(layer.mask.flatten().nonzero().flatten().tolist()))
    assert changed > 0


def test_exported_backend_refuses_a_readjust_plan():
    backend = GraphBackend(type("M", (), {"batch_size": 8})(), {})
    with pytest.raises(ValueError, match="torch backend only"):
        backend.train({}, {p.BATCH_SIZE: 8, p.READJUST + "fc": 3}, np.zeros((8, 1)), np.zeros(8))
