"""Exported training steps (ONNX Runtime, ExecuTorch) against the eager reference step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from export.exporter import export
from export.layout import GraphKey, layout_of
from export.runtime import load_runner
from export.state import load_state, state_of
from fedmef.models import prunable_layers
from fedmef.training import LocalPlan, batch_indices, growth_signal, local_train

from .export_support import assert_close_state, batch, eager_step, keyed_model, marked_sets

RUNTIMES = ["onnxruntime", "executorch"]
# ExecuTorch lowering of the reduced ResNet18 graph (~2,500 nodes) takes ~100 s; it runs once per module
CONFIGS = {
    # NSConv + SAP (int32 positions, ReLU not fused: must equal the eager custom op exactly)
    "cnn-sap": GraphKey("cnn", (1, 8, 8), 10, 16, (), width=8, scaled=True, keep=0.4, fuse_relu=False,
                        weight_decay=1e-3),
    # plain masked convs, no SAP, masked-dense layout (dense tensors x mask)
    "cnn-masked": GraphKey("cnn", (1, 8, 8), 10, 16, (), width=8, layout="masked"),
    # bit-packed SAP positions with the ReLU fused at a keep fraction that keeps every positive;
    # convolutions as im2col + mm (the fast form for ExecuTorch)
    "cnn-bits-fused": GraphKey("cnn", (1, 8, 8), 10, 16, (), width=8, keep=0.9, encoding="bits", conv="im2col"),
    # reduced BN-free ResNet18: shortcuts, SkipInit gains, strided NSConvs, bit-packed SAP
    "resnet-sap": GraphKey("resnet18", (3, 16, 16), 10, 4, (), width=4, scaled=True, keep=0.5,
                           encoding="bits", fuse_relu=False),
}  # fmt: skip


def _params():
    for config in CONFIGS:
        for runtime in RUNTIMES:
            yield pytest.param((config, runtime), id=f"{config}-{runtime}")


@pytest.fixture(scope="module", params=list(_params()))
def exported(request, tmp_path_factory):
    name, runtime = request.param
    key, model = keyed_model(CONFIGS[name])
    directory = tmp_path_factory.mktemp(f"{name}-{runtime}")
    export(key, directory, runtime)
    return key, model, load_runner(directory, runtime)


def test_steps_match_eager(exported):
    key, model, runner = exported
    model = copy.deepcopy(model)
    layout = layout_of(key)
    marked = marked_sets(model)
    state = state_of(model, layout, marked)
    for step, lam in enumerate([0.0, 0.05, 0.05]):
        x, y = batch(key, seed=step)
        loss, state = runner.step(state, x, y, lr=0.1, lam=lam)
        expected_loss = eager_step(model, x, y, 0.1, lam, marked, key.weight_decay)
        assert loss == pytest.approx(expected_loss, rel=1e-4)
        assert_close_state(state, state_of(model, layout, marked), [s.name for s in layout.trainable])


def test_pruned_weights_stay_zero(exported):
    key, model, runner = exported
    layout = layout_of(key)
    state = state_of(model, layout)
    for step in range(2):
        _, state = runner.step(state, *batch(key, seed=step), lr=0.5, lam=0.0)
    trained = copy.deepcopy(model)
    load_state(trained, layout, state)
    for name, layer in prunable_layers(trained).items():
        original = prunable_layers(model)[name]
        assert torch.equal(layer.mask, original.mask)
        assert torch.count_nonzero(layer.weight[original.mask == 0]) == 0, name
        assert not torch.equal(layer.weight, original.weight), f"{name} did not train"
        stored = state[f"{name}.weight"]
        assert stored.size == (int(original.mask.sum()) if key.sparse else original.mask.numel())


def test_penalty_adds_lambda_times_marked_square(exported):
    key, model, runner = exported
    layout = layout_of(key)
    marked = marked_sets(model)
    state = state_of(model, layout, marked)
    x, y = batch(key)
    plain, _ = runner.step(state, x, y, lr=0.1, lam=0.0)
    penalised, _ = runner.step(state, x, y, lr=0.1, lam=0.3)
    layers = prunable_layers(model)
    expected = 0.3 * sum(float((layer.weight.flatten()[marked[n]] ** 2).sum()) for n, layer in layers.items())
    assert expected > 0
    assert penalised - plain == pytest.approx(expected, rel=1e-4)


def test_growth_signal_matches_eager(exported):
    key, model, runner = exported
    layout = layout_of(key)
    x, y = batch(key, seed=5)
    grads = runner.growth(state_of(model, layout), x, y)
    layers = prunable_layers(model)
    assert set(grads) == set(layers)
    counts = {n: min(5, int((layer.mask == 0).sum())) for n, layer in layers.items()}
    expected = growth_signal(copy.deepcopy(model), torch.from_numpy(x), torch.from_numpy(y), counts)
    for name, (indices, magnitudes) in expected.items():
        assert grads[name].shape == tuple(layers[name].weight.shape)
        np.testing.assert_allclose(np.abs(grads[name]).reshape(-1)[indices.numpy()], magnitudes.numpy(), rtol=1e-4)
    # the full dense gradient w.r.t. the used weight, read with the eager capture mechanism
    eager = copy.deepcopy(model)
    captured = prunable_layers(eager)
    for layer in captured.values():
        layer.capture = True
    loss = torch.nn.functional.cross_entropy(eager(torch.from_numpy(x)), torch.from_numpy(y))
    dense = torch.autograd.grad(loss, [captured[n].captured for n in captured])
    assert_close_state(grads, {n: g.numpy() for n, g in zip(captured, dense, strict=True)}, list(captured))


def test_local_train_epochs_match(exported):
    """Several steps driven exactly like ``fedmef.training.local_train`` (fixed-size batches)."""
    key, model, runner = exported
    layout = layout_of(key)
    x, y = batch(key, seed=9, count=3 * key.batch_size)
    plan = LocalPlan(epochs=1, batch_size=key.batch_size, lr=0.05, weight_decay=key.weight_decay, seed=3)
    state = state_of(model, layout)
    losses = []
    for indices in batch_indices(len(x), plan.batch_size, plan.epochs, plan.seed):
        loss, state = runner.step(state, x[indices], y[indices], plan.lr, 0.0)
        losses.append(loss)
    reference = copy.deepcopy(model)
    mean_loss = local_train(reference, torch.from_numpy(x), torch.from_numpy(y), plan)
    assert np.mean(losses) == pytest.approx(mean_loss, rel=1e-4)
    assert_close_state(state, state_of(reference, layout), [s.name for s in layout.trainable])
