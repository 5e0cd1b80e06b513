"""Budget-aware extrusion: marked sets, coefficient/lr schedule, penalty forms, and its effect."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedmef.activation_pruning import MaskedLinear
from fedmef.extrusion import ExtrusionSchedule, marked_norm, marked_sets, marked_values, penalty
from fedmef.models import prunable_layers
from fedmef.training import LocalPlan, local_train


def sparse_layer():
    """A 10x10 layer at 90 % sparsity: 10 active weights with known magnitudes, zeros elsewhere."""
    weight = torch.zeros(100)
    active = torch.tensor([3, 11, 27, 38, 42, 55, 61, 70, 84, 99])
    weight[active] = torch.tensor([0.9, -0.05, 0.6, 0.02, -0.7, 0.5, -0.03, 0.8, 0.4, -0.3])
    mask = torch.zeros(100, dtype=torch.bool)
    mask[active] = True
    return weight.view(10, 10), mask.view(10, 10)


def test_marked_sets_select_lowest_active_and_penalty_is_nonzero_at_90_percent_sparsity():
    weight, mask = sparse_layer()
    marked = marked_sets({"fc": weight}, {"fc": mask}, 0.3)  # int(0.3 * 10) = 3
    assert sorted(marked["fc"].tolist()) == [11, 38, 61]  # |w| = 0.05, 0.02, 0.03
    assert bool(mask.flatten()[marked["fc"]].all())
    values = marked_values({"fc": weight}, marked)
    value = penalty(values, 2.0, "squared")
    # the reference's whole-tensor topk picked 3 pruned zeros and its penalty was identically 0
    assert float(value) == pytest.approx(2.0 * (0.05**2 + 0.02**2 + 0.03**2))
    assert float(value) > 0


def test_marked_sets_empty_when_fraction_zero():
    weight, mask = sparse_layer()
    marked = marked_sets({"fc": weight}, {"fc": mask}, 0.0)
    assert marked["fc"].numel() == 0
    assert marked_values({"fc": weight}, marked) == []
    assert float(penalty([], 1.0)) == 0.0


def test_marked_values_are_differentiable_gathers_and_norm_is_l1():
    weight = torch.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
    values = marked_values(
        {"a": weight, "b": weight}, {"a": torch.tensor([1, 3]), "b": torch.tensor([], dtype=torch.long)}
    )
    assert len(values) == 1 and torch.equal(values[0], torch.tensor([-2.0, -4.0]))
    assert marked_norm(values) == 6.0
    penalty(values, 0.5, "squared").backward()  # d/dw 0.5 w^2 = w at marked positions only
    assert torch.equal(weight.grad, torch.tensor([[0.0, -2.0], [0.0, -4.0]]))


def test_penalty_forms_hand_computed():
    values = [torch.tensor([3.0, 4.0]), torch.tensor([1.0, -2.0, 2.0])]
    assert float(penalty(values, 0.5, "squared")) == pytest.approx(0.5 * (25 + 9))
    assert float(penalty(values, 0.5, "norm")) == pytest.approx(0.5 * (5 + 3))  # per-layer L2 norms, summed
    assert float(penalty(values, 0.5)) == pytest.approx(17.0)  # default: squared


def test_penalty_rejects_unknown_form():
    with pytest.raises(ValueError, match="penalty"):
        penalty([torch.tensor([1.0])], 0.5, "l1")


def test_coefficient_ramps_then_caps():
    schedule = ExtrusionSchedule(total_steps=10, base_lr=0.1, lambda_step=0.25, lambda_max=0.6)
    assert [schedule.coefficient(s) for s in range(4)] == [0.25, 0.5, 0.6, 0.6]
    default = ExtrusionSchedule(total_steps=10, base_lr=0.1)
    assert default.coefficient(0) == pytest.approx(1e-4)
    assert default.coefficient(9) == pytest.approx(1e-3)
    assert default.coefficient(99) == pytest.approx(0.01)
    assert default.coefficient(500) == 0.01


def test_budget_factor_values():
    schedule = ExtrusionSchedule(total_steps=10, base_lr=0.1)
    assert schedule.budget_factor(0) == 1.0
    assert schedule.budget_factor(4) == pytest.approx(12 / 16)
    assert schedule.budget_factor(5) == pytest.approx(10 / 15)
    assert schedule.budget_factor(10) == 0.0


def test_learning_rate_is_max_of_schedule_and_budget_aware_rate():
    schedule = ExtrusionSchedule(total_steps=10, base_lr=0.1)
    # beta = p(5) * (2 sigmoid(2) - 1) * eta_0 = 2/3 * tanh(1) * 0.1 = 0.050773
    beta = 2 / 3 * (2 / (1 + math.exp(-2.0)) - 1) * 0.1
    assert beta == pytest.approx(2 / 3 * math.tanh(1.0) * 0.1)
    assert schedule.learning_rate(5, 0.01, 2.0) == pytest.approx(beta)
    assert schedule.learning_rate(5, 0.09, 2.0) == 0.09  # scheduled lr wins
    assert schedule.learning_rate(5, 0.01, 0.0) == 0.01  # nothing marked left: beta = 0
    assert schedule.learning_rate(10, 0.01, 50.0) == 0.01  # end of window: p = 0


def test_learning_rate_does_not_ratchet_across_calls():
    schedule = ExtrusionSchedule(total_steps=10, base_lr=0.1)
    high = schedule.learning_rate(0, 0.01, 10.0)
    assert high == pytest.approx(0.1 * (2 / (1 + math.exp(-10.0)) - 1))
    assert schedule.learning_rate(8, 0.01, 10.0) == pytest.approx(4 / 12 * high)  # p(8) = 4/12: lower again
    assert schedule.learning_rate(5, 0.01, 2.0) == schedule.learning_rate(5, 0.01, 2.0)
    assert schedule.learning_rate(0, 0.01, 0.1) < high  # depends on the current norm only


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"total_steps": 0}, "steps"), ({"total_steps": -3}, "steps"), ({"total_steps": 5, "penalty": "l1"}, "penalty")],
)
def test_schedule_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExtrusionSchedule(base_lr=0.1, **kwargs)


# -- the effect of extrusion on a seeded toy classifier --------------------------------------------------------------


def toy_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=gen)
    y = (x @ torch.randn(12, 4, generator=gen)).argmax(1)  # a linear teacher
    torch.manual_seed(1)
    model = nn.Sequential(MaskedLinear(12, 4))
    mask = (torch.rand(4, 12, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    with torch.no_grad():
        model[0].mask.copy_(mask)
        model[0].weight.mul_(mask)
    return model, x, y


def train_and_cut(extrude: bool) -> tuple[float, float]:
    """(||w_marked||_2 after training, |loss change| when the marked weights are then pruned)."""
    model, x, y = toy_problem()
    layer = prunable_layers(model)["0"]
    marked = marked_sets({"0": layer.weight}, {"0": layer.mask.bool()}, 0.3)
    assert marked["0"].numel() == int(0.3 * int(layer.mask.sum()))
    plan = LocalPlan(epochs=8, batch_size=32, lr=0.1, marked=marked if extrude else {}, lambda_step=0.1, lambda_max=1.0)
    local_train(model, x, y, plan)
    norm = float(layer.weight.detach().flatten()[marked["0"]].norm())
    with torch.no_grad():
        before = float(F.cross_entropy(model(x), y))
        layer.weight.view(-1)[marked["0"]] = 0.0
        after = float(F.cross_entropy(model(x), y))
    return norm, abs(after - before)


def test_extrusion_empties_marked_weights_so_pruning_them_costs_little():
    plain_norm, plain_change = train_and_cut(extrude=False)
    extruded_norm, extruded_change = train_and_cut(extrude=True)
    assert plain_norm > 0.5 and plain_change > 0.05  # without BaE the marked weights matter
    assert extruded_norm / plain_norm < 0.3  # measured 0.10
    assert extruded_change / plain_change < 0.5  # measured 0.14
