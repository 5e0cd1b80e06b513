"""Budget-aware extrusion: marked sets, coefficient/lr schedule, penalty forms, its gradient through
the NSConv standardisation, and its effect on the marked effective weights."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedmef.activation_pruning import MaskedConv2d, MaskedLinear, effective_weight
from fedmef.extrusion import ExtrusionSchedule, marked_norm, marked_sets, marked_values, penalty
from fedmef.models import effective_weights, prunable_layers
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
    schedule = ExtrusionSchedule(total_steps=10, base_lr=0.1, lambda_max=0.6, ramp=0.4)
    assert [schedule.coefficient(s) for s in range(6)] == pytest.approx([0.15, 0.3, 0.45, 0.6, 0.6, 0.6])


@pytest.mark.parametrize("total_steps", [2, 3, 7, 24, 100])
@pytest.mark.parametrize("ramp", [0.25, 0.5, 1.0])
def test_coefficient_reaches_its_cap_by_step_rho_t_whatever_the_number_of_steps(total_steps, ramp):
    schedule = ExtrusionSchedule(total_steps=total_steps, base_lr=0.1, lambda_max=0.1, ramp=ramp)
    capped = math.ceil(ramp * total_steps) - 1  # 0-based: the ceil(rho T)-th step of the window
    assert schedule.coefficient(capped) == pytest.approx(0.1)
    assert schedule.coefficient(total_steps - 1) == pytest.approx(0.1)
    assert all(schedule.coefficient(s) < 0.1 for s in range(capped) if s + 1 < ramp * total_steps)


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
    [({"total_steps": 0}, "steps"), ({"total_steps": -3}, "steps"), ({"total_steps": 5, "penalty": "l1"}, "penalty"),
     ({"total_steps": 5, "ramp": 0.0}, "ramp"), ({"total_steps": 5, "ramp": 1.5}, "ramp")],  # fmt: skip
)
def test_schedule_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExtrusionSchedule(base_lr=0.1, **kwargs)


# -- the penalty on an NSConv's effective weight ----------------------------------------------------------------------


def nsconv():
    """One output channel, 5 inputs: active raw [0, 3, 2, 7], position 4 pruned; gain 1."""
    conv = MaskedConv2d(5, 1, 1, bias=False, scaled=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.0, 3.0, 2.0, 7.0, 0.0]).view(1, 5, 1, 1))
        conv.mask.copy_(torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]).view(1, 5, 1, 1))
    return conv


def test_penalty_gradient_reaches_the_raw_nsconv_weight_through_the_standardisation():
    conv = nsconv()
    marked = {"c": torch.tensor([2])}  # raw 2: effective (2 - 3) / sqrt(26)
    values = marked_values({"c": effective_weight(conv, detach_gain=True)}, marked)
    assert float(values[0].detach()) == pytest.approx(-1 / math.sqrt(26))
    penalty(values, 1.0, "squared").backward()
    # P = e_2^2, e_i = (w_i - mean) / s with s^2 = sum of squared deviations = 26 and deviations d = [-3, 0, -1, 4]:
    # dP/dw_j = 2 e_2 [(delta_2j - 1/4) / s - d_2 d_j / s^3]
    d, s = [-3.0, 0.0, -1.0, 4.0], math.sqrt(26)
    expected = [2 * (-1 / s) * ((j == 2) - 0.25) / s - 2 * (-1 / s) * d[2] * d[j] / s**3 for j in range(4)]
    assert conv.weight.grad.flatten().tolist()[:4] == pytest.approx(expected, rel=1e-5)
    assert all(g != 0 for g in expected)  # unmarked weights of the channel move too: they share its mean and scale
    assert conv.weight.grad.flatten()[4] == 0  # the pruned position
    assert conv.gain.grad is None  # the gain is held constant


def test_marked_sets_rank_effective_weights_so_an_nsconv_raw_zero_is_not_marked():
    conv = nsconv()
    marked = marked_sets({"c": effective_weight(conv).detach()}, {"c": conv.mask.bool()}, 0.25)  # int(0.25 * 4) = 1
    assert marked["c"].tolist() == [1]  # raw 3 = the channel mean: effective 0; raw 0 is effective -3 / sqrt(26)


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
    plan = LocalPlan(epochs=8, batch_size=32, lr=0.1, marked=marked if extrude else {}, lambda_max=1.0, lambda_ramp=0.2)
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


def nsconv_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 4, 4, generator=gen)
    y = (x.flatten(1) @ torch.randn(16, 4, generator=gen)).argmax(1)
    torch.manual_seed(1)
    model = nn.Sequential(MaskedConv2d(1, 6, 3, padding=1, scaled=True), nn.ReLU(), nn.Flatten(), MaskedLinear(96, 4))
    with torch.no_grad():
        mask = (torch.rand(6, 1, 3, 3, generator=torch.Generator().manual_seed(2)) < 0.6).float()
        model[0].mask.copy_(mask)
        model[0].weight.mul_(mask)
    return model, x, y


def marked_effective_norm(extrude: bool) -> tuple[float, float]:
    """(||W_marked||_2 of the NSConv before, after 8 epochs with or without BaE)."""
    model, x, y = nsconv_problem()
    masks = {n: layer.mask.bool() for n, layer in prunable_layers(model).items()}
    marked = {"0": marked_sets(effective_weights(model), masks, 0.3)["0"]}
    before = float(effective_weights(model)["0"].flatten()[marked["0"]].norm())
    plan = LocalPlan(epochs=8, batch_size=32, lr=0.1, marked=marked if extrude else {}, lambda_max=1.0, lambda_ramp=0.2)
    local_train(model, x, y, plan)
    return before, float(effective_weights(model)["0"].flatten()[marked["0"]].norm())


def test_extrusion_shrinks_the_marked_effective_nsconv_weights():
    before, plain = marked_effective_norm(extrude=False)
    same, extruded = marked_effective_norm(extrude=True)
    assert before == same > 0
    assert plain > before  # without BaE the marked weights grow (measured 0.57 -> 1.43)
    assert extruded / plain < 0.1  # measured 0.03
