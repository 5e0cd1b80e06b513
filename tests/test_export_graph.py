"""The traced step graph (before any runtime) and its building blocks: SAP encodings, conv grads."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedmef.activation_pruning import standardize
from export.graph import packed_standardize, trace
from export.layout import GraphKey, layout_of
from export.sap import Compressed, Im2colConv, input_grad, weight_grad
from export.state import state_of

from .export_support import assert_close_state, batch, eager_step, keyed_model, marked_sets


def run_graph(key: GraphKey, model, x, y, lr: float, lam: float, marked=None, kind: str = "step"):
    layout = layout_of(key)
    state = state_of(model, layout, marked)
    inputs = [torch.from_numpy(np.asarray(state[s.name])) for s in layout.state]
    inputs += [torch.from_numpy(x), torch.from_numpy(y), torch.tensor(lr), torch.tensor(lam)]
    gm, _ = trace(key, inputs, kind)
    outputs = gm(*inputs)
    names = [s.name for s in layout.trainable]
    return float(outputs[0]), {n: o.detach().numpy() for n, o in zip(names, outputs[1:], strict=True)}


@pytest.mark.parametrize("key", [
    GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, keep=0.5, fuse_relu=False),
    GraphKey("mobilenetv2", (3, 16, 16), 10, 2, (), width=0.25, scaled=True, keep=0.5, fuse_relu=False,
             encoding="bits"),
    GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, layout="dense"),
], ids=["cnn", "mobilenetv2-bits", "cnn-dense"])  # fmt: skip
def test_traced_step_matches_eager_for_every_model(key):
    key, model = keyed_model(key)
    x, y = batch(key)
    marked = marked_sets(model)
    loss, updated = run_graph(key, model, x, y, lr=0.1, lam=0.2, marked=marked)
    reference = copy.deepcopy(model)
    assert loss == pytest.approx(eager_step(reference, x, y, 0.1, 0.2, marked), rel=1e-4)
    layout = layout_of(key)
    assert_close_state(updated, state_of(reference, layout), [s.name for s in layout.trainable])


def test_fused_relu_changes_only_gradients_upstream_of_fused_relus():
    """Fusion takes the ReLU mask from the compressed copy: the forward pass and every layer after the
    last fused ReLU are unchanged; layers before it see the approximate mask."""
    base = GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, keep=0.2)
    key, model = keyed_model(base)
    x, y = batch(key)
    fused_loss, fused = run_graph(key, model, x, y, lr=0.1, lam=0.0)
    exact_loss, exact = run_graph(GraphKey(**{**key.__dict__, "fuse_relu": False}), model, x, y, lr=0.1, lam=0.0)
    assert fused_loss == pytest.approx(exact_loss, rel=1e-6)
    for name in ["fc.weight", "conv3.weight", "conv3.gain"]:  # relu(conv3) feeds pooling: not fused
        np.testing.assert_allclose(fused[name], exact[name], rtol=1e-5, atol=1e-7)
    assert not np.allclose(fused["conv1.weight"], exact["conv1.weight"], rtol=1e-4, atol=0)


def test_compressed_encodings_keep_the_top_k_per_sample():
    x = torch.tensor([[3.0, -1.0, 0.5, -4.0, 0.0, 2.0, 0.1, -0.2, 7.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]])
    expected = torch.tensor([[3.0, 0, 0, -4.0, 0, 2.0, 0, 0, 7.0], [0, 0, 0, 0, 0, 6.0, 7.0, 8.0, 9.0]])
    for encoding in ["int32", "bits"]:
        saved = Compressed.of(x, encoding, keep=0.4)  # ceil(0.4 * 9) = 4 per sample
        assert torch.equal(saved.dense(), expected)
    values, packed = Compressed.of(x, "bits", keep=0.4).tensors
    assert packed.dtype == torch.uint8 and packed.shape == (2, 2)  # 9 positions -> 2 bytes
    assert packed[0].tolist() == [1 + 8 + 32, 1]  # positions 0, 3, 5 | 8
    assert values[0].tolist() == [3.0, -4.0, 2.0, 7.0]  # in position order
    assert Compressed.of(x, "int32", keep=1.0).encoding == "dense"


@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 1, 1), (2, 0, 1), (1, 1, 4), (2, 1, 4)])
def test_hand_written_conv_backward_matches_autograd(stride, padding, groups):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 7, 7, generator=gen, requires_grad=True)
    w = torch.randn(8 if groups == 1 else 4, 4 // groups, 3, 3, generator=gen, requires_grad=True)
    out = F.conv2d(x, w, None, stride, padding, 1, groups)
    grad = torch.randn(out.shape, generator=gen)
    gx, gw = torch.autograd.grad(out, [x, w], grad)
    torch.testing.assert_close(weight_grad(x.detach(), grad, list(w.shape), stride, padding, groups), gw)
    torch.testing.assert_close(input_grad(grad, w.detach(), list(x.shape), stride, padding, groups), gx)
    torch.testing.assert_close(Im2colConv.forward(x.detach(), w.detach(), None, stride, padding, groups), out)
    ix, iw = Im2colConv.backward(grad, x.detach(), w.detach(), list(x.shape), stride, padding, groups, True)
    torch.testing.assert_close(ix, gx)
    torch.testing.assert_close(iw, gw)


def test_packed_standardize_equals_masked_standardize():
    gen = torch.Generator().manual_seed(0)
    weight, gain = torch.randn(6, 3, 3, 3, generator=gen), torch.rand(6, 1, 1, 1, generator=gen) + 0.5
    mask = (torch.rand(weight.shape, generator=gen) < 0.3).float()
    mask[5] = 0  # a channel with no active weight
    mask[0, 0, 0, 0] = 1
    positions = torch.nonzero(mask.flatten()).flatten()
    packed = packed_standardize(weight.flatten()[positions], positions, weight.shape, gain)
    torch.testing.assert_close(packed, standardize(weight, mask, gain).flatten()[positions])


def test_layout_rejects_wrong_nnz():
    key, _ = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 4, (), width=8))
    with pytest.raises(ValueError, match="nnz"):
        layout_of(GraphKey(**{**key.__dict__, "layer_nnz": (("conv1", 10**6),) + key.layer_nnz[1:]}))
    with pytest.raises(ValueError, match="do not match"):
        layout_of(GraphKey(**{**key.__dict__, "layer_nnz": key.layer_nnz[1:]}))
