"""Local training: the SGD step with masks and BaE, the growth signal, evaluation."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedmef import protocol
from fedmef.activation_pruning import MaskedLinear, standardize
from fedmef.extrusion import marked_sets
from fedmef.models import effective_weights, prunable_layers
from fedmef.training import (
    LocalPlan,
    evaluate,
    extrusion_schedule,
    growth_signal,
    local_train,
    step_scalars,
    steps_per_round,
)

from .model_support import masked_cnn as shared_masked_cnn


def masked_cnn(scaled: bool = False, seed: int = 0):
    return shared_masked_cnn(0.3, scaled=scaled, seed=seed)


def data(n: int = 24):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_steps_per_round():
    assert steps_per_round(10, LocalPlan(epochs=3, batch_size=4, lr=0.1)) == 6
    assert steps_per_round(2, LocalPlan(epochs=3, batch_size=4, lr=0.1)) == 3


# -- step scalars ----------------------------------------------------------------------------------------------------


def test_step_scalars_without_marked_set():
    plan = LocalPlan(epochs=1, batch_size=4, lr=0.03)
    assert extrusion_schedule(plan, 3) is None
    assert [step_scalars(plan, 3, step, 5.0) for step in range(3)] == [(0.03, 0.0)] * 3


def test_step_scalars_with_marked_set_continue_the_window():
    plan = LocalPlan(
        epochs=1, batch_size=4, lr=0.01, marked={"fc": torch.tensor([0])}, lambda_max=0.25, lambda_ramp=1.0,
        window_offset_rounds=1, window_rounds=2, base_lr=0.1,
    )  # fmt: skip
    schedule = extrusion_schedule(plan, 3)
    assert (schedule.total_steps, schedule.base_lr, schedule.ramp) == (6, 0.1, 1.0)
    # second round of a 2-round window, 3 steps each: window steps 3, 4, 5 of T = 6
    got = [step_scalars(plan, 3, step, norm) for step, norm in enumerate([2.0, 1.0, 0.0])]
    p = [(12 - 6) / (12 - 3), (12 - 8) / (12 - 4), (12 - 10) / (12 - 5)]
    expected_lr = [p[0] * math.tanh(1.0) * 0.1, p[1] * math.tanh(0.5) * 0.1, 0.01]  # 2 sigmoid(n) - 1 = tanh(n/2)
    assert [lr for lr, _ in got] == pytest.approx(expected_lr)
    assert [lam for _, lam in got] == pytest.approx([0.25 * 4 / 6, 0.25 * 5 / 6, 0.25])  # rho = 1: cap at the end


def test_lambda_reaches_its_cap_at_step_rho_t_of_the_window():
    plan = LocalPlan(epochs=1, batch_size=4, lr=0.01, marked={"fc": torch.tensor([0])}, lambda_max=0.3,
                     lambda_ramp=0.5, window_offset_rounds=0, window_rounds=2)  # fmt: skip
    # 5 steps a round, T = 10, rho T = 5: the first round ramps 0.06, 0.12, ..., the cap at its last step
    assert [step_scalars(plan, 5, step, 0.0)[1] for step in range(5)] == pytest.approx([0.06, 0.12, 0.18, 0.24, 0.3])
    second = replace(plan, window_offset_rounds=1)
    assert [step_scalars(second, 5, step, 0.0)[1] for step in range(5)] == [0.3] * 5


def test_base_lr_defaults_to_the_round_lr():
    plan = LocalPlan(epochs=1, batch_size=4, lr=0.07, marked={"fc": torch.tensor([0])})
    assert extrusion_schedule(plan, 5).base_lr == 0.07


# -- local training --------------------------------------------------------------------------------------------------


def test_local_train_keeps_pruned_weights_zero_and_moves_active_ones():
    model = masked_cnn()
    before = {n: layer.weight.detach().clone() for n, layer in prunable_layers(model).items()}
    x, y = data()
    local_train(model, x, y, LocalPlan(epochs=2, batch_size=8, lr=0.1, weight_decay=0.01))
    for name, layer in prunable_layers(model).items():
        mask = layer.mask.bool()
        assert torch.all(layer.weight[~mask] == 0), name
        assert not torch.equal(layer.weight[mask], before[name][mask]), name


def manual_step(model, x, y, lr, weight_decay, penalty_term=None):
    loss = F.cross_entropy(model(x), y)
    if penalty_term is not None:
        loss = loss + penalty_term(model)
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.copy_(p - lr * (g + weight_decay * p))
        for layer in prunable_layers(model).values():
            layer.weight.copy_(layer.weight * layer.mask)
    return float(loss.detach())


def test_one_step_equals_hand_written_sgd_with_weight_decay():
    x, y = data(8)
    trained, reference = masked_cnn(scaled=True), masked_cnn(scaled=True)
    plan = LocalPlan(epochs=1, batch_size=8, lr=0.1, weight_decay=0.05, seed=3)
    loss = local_train(trained, x, y, plan)
    (batch,) = protocol.batches(8, 8, 1, 3)
    expected_loss = manual_step(reference, x[batch], y[batch], 0.1, 0.05)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    for (name, a), b in zip(trained.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def effective_with_constant_gain(model) -> dict[str, torch.Tensor]:
    """Hand-written: NSConv weights standardised with the gain detached, the linear layer masked."""
    out = {}
    for name, layer in prunable_layers(model).items():
        gain = getattr(layer, "gain", None)
        out[name] = layer.weight * layer.mask if gain is None else standardize(layer.weight, layer.mask, gain.detach())
    return out


def test_one_step_with_extrusion_equals_hand_written_step_on_the_effective_weights():
    x, y = data(8)
    trained, reference = masked_cnn(scaled=True), masked_cnn(scaled=True)
    masks = {n: layer.mask.bool() for n, layer in prunable_layers(reference).items()}
    marked = marked_sets(effective_weights(reference), masks, 0.3)
    plan = LocalPlan(
        epochs=1, batch_size=8, lr=0.01, weight_decay=0.0, marked=marked, lambda_max=0.8, lambda_ramp=0.5,
        window_offset_rounds=1, window_rounds=2, base_lr=0.2, seed=3,
    )  # fmt: skip
    local_train(trained, x, y, plan)
    # window step 1 of T = 2: lambda = 0.8 min(1, 2 / (0.5 * 2)); p(1) = 2/3; lr = max(0.01, 2/3 tanh(|W_m|_1 / 2) 0.2)
    with torch.no_grad():
        effective = effective_with_constant_gain(reference)
    l1 = float(sum(effective[n].flatten()[i].abs().sum() for n, i in marked.items()))
    lr = max(0.01, 2 / 3 * math.tanh(l1 / 2) * 0.2)
    assert lr > 0.01

    def squared_penalty(model):
        effective = effective_with_constant_gain(model)
        return 0.8 * sum(effective[n].flatten()[i].pow(2).sum() for n, i in marked.items())

    (batch,) = protocol.batches(8, 8, 1, 3)
    manual_step(reference, x[batch], y[batch], lr, 0.0, squared_penalty)
    for (name, a), b in zip(trained.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_local_train_returns_mean_loss_of_its_steps():
    x, y = data(16)
    model = masked_cnn()
    plan = LocalPlan(epochs=1, batch_size=8, lr=0.0)  # lr 0: weights fixed, so each step's loss is known
    first, second = protocol.batches(16, 8, 1, 0)
    with torch.no_grad():
        expected = float(F.cross_entropy(model(x[first]), y[first])) + float(
            F.cross_entropy(model(x[second]), y[second])
        )
    assert local_train(model, x, y, plan) == pytest.approx(expected / 2, rel=1e-6)


# -- growth signal ---------------------------------------------------------------------------------------------------


def used_weight_gradients(model, x, y):
    """Manual: a copy with all-ones masks and weight = weight * mask has the same used weight."""
    dense = masked_cnn()
    dense.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer in prunable_layers(dense).values():
            layer.weight.mul_(layer.mask)
            layer.mask.fill_(1.0)
    layers = prunable_layers(dense)
    grads = torch.autograd.grad(F.cross_entropy(dense(x), y), [layer.weight for layer in layers.values()])
    return dict(zip(layers, grads, strict=True))


def test_growth_signal_reports_top_inactive_gradients_of_the_used_weight():
    x, y = data(16)
    model = masked_cnn()
    counts = {"conv2": 5, "fc": 7}
    signal = growth_signal(model, x, y, counts)
    assert list(signal) == ["conv2", "fc"]
    manual = used_weight_gradients(model, x, y)
    for name, count in counts.items():
        indices, magnitudes = signal[name]
        inactive = ~prunable_layers(model)[name].mask.bool().flatten()
        assert indices.shape == (count,) and bool(inactive[indices].all())
        assert torch.equal(magnitudes, magnitudes.sort(descending=True).values)
        grad = manual[name].abs().flatten()
        torch.testing.assert_close(magnitudes, grad[indices])
        expected = grad[inactive].sort(descending=True).values[:count]
        torch.testing.assert_close(magnitudes, expected)
    assert all(layer.captured is None and not layer.capture for layer in prunable_layers(model).values())


def test_growth_signal_of_scaled_convs_is_nonzero_where_the_weight_gradient_is_zero():
    x, y = data(16)
    model = masked_cnn(scaled=True)
    F.cross_entropy(model(x), y).backward()
    conv = model.conv2
    inactive = ~conv.mask.bool()
    assert torch.all(conv.weight.grad[inactive] == 0)  # why the signal is read at the used weight
    indices, magnitudes = growth_signal(model, x, y, {"conv2": 4})["conv2"]
    assert bool(inactive.flatten()[indices].all()) and bool((magnitudes > 0).all())


# -- evaluation ------------------------------------------------------------------------------------------------------


def test_evaluate_hand_computed():
    model = nn.Sequential(MaskedLinear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])  # logits = x
    y = torch.tensor([0, 0, 1])
    loss, accuracy = evaluate(model, x, y, batch_size=2)
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(1)) + math.log1p(math.exp(-2))) / 3
    assert loss == pytest.approx(expected)
    assert accuracy == pytest.approx(2 / 3)
    assert not model.training
