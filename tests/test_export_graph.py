"""The traced step graph (before any runtime) and its building blocks: SAP encodings, conv grads."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from export import im2col, onnx_backend
from export.graph import packed_standardize, trace
from export.im2col import Im2colConv, channels_last
from export.layout import GraphKey, growth_sizes, layout_of
from export.sap import ENCODINGS, Compressed, im2col_matrix, input_grad, weight_grad
from fedmef import protocol as p
from fedmef import wire
from fedmef.activation_pruning import standardize
from fedmef.training import LocalPlan
from python_client.runtimes import open_graph

from .export_support import assert_close_state, batch, eager_round, keyed_model, marked_sets


def run_graph(key: GraphKey, model, x, y, plan: LocalPlan, tmp_path, kind: str = "step"):
    """Trace ``kind``, write it as ONNX and run it on the model's state: (loss, update).

    Run in ONNX Runtime rather than as the traced torch graph: ORT's TopK breaks ties by position,
    as the eager reference does, while ``torch.topk``'s tie order is unspecified."""
    layout = layout_of(key)
    scalars, marked = wire.encode_plan(plan, 1)
    extra = scalars | {p.X: x, p.Y: y, p.STEP: 0.0, p.STEPS: 1.0}
    feeds = p.pack(layout, kind, wire.encode_state(model) | marked, extra)
    example = [torch.from_numpy(value) for value in feeds.values()]
    gm, _ = trace(key, example, kind)
    path = tmp_path / f"{kind}-{key.digest()}.onnx"
    onnx_backend.write(gm, example, list(feeds), [o.name for o in layout.outputs[kind]], path)
    manifest_stub = SimpleNamespace(runtime="onnxruntime", inputs=layout.inputs)
    outputs = open_graph(manifest_stub, kind, path)(feeds)
    state = feeds | {o.of: v for o, v in zip(layout.outputs[kind], outputs, strict=True) if o.of}
    return float(outputs[0]), p.unpack(layout, kind, state)


def one_step_plan(key: GraphKey, model, **fields) -> LocalPlan:
    marked = marked_sets(model) if key.extrusion else {}
    return LocalPlan(epochs=1, batch_size=key.batch_size, lr=0.1, weight_decay=key.weight_decay, marked=marked,
                     lambda_max=0.2, lambda_ramp=0.5, base_lr=0.1, **fields)  # fmt: skip


@pytest.mark.parametrize("key", [
    GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, keep=0.5, fuse_relu=False, extrusion=True),
    GraphKey("mobilenetv2", (3, 16, 16), 10, 2, (), width=0.25, scaled=True, keep=0.5, fuse_relu=False,
             encoding="bits", extrusion=True),
    GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, layout="dense"),
], ids=["cnn", "mobilenetv2-bits", "cnn-dense"])  # fmt: skip
def test_traced_step_matches_eager_for_every_model(key, tmp_path):
    key, model = keyed_model(key)
    x, y = batch(key)
    plan = one_step_plan(key, model)
    loss, updated = run_graph(key, model, x, y, plan, tmp_path)
    expected, expected_loss = eager_round(model, x, y, plan)
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    assert_close_state(updated, expected, list(expected))


def test_fused_relu_changes_only_gradients_upstream_of_fused_relus(tmp_path):
    """Fusion takes the ReLU mask from the compressed copy: the forward pass and every layer after the
    last fused ReLU are unchanged; layers before it see the approximate mask."""
    base = GraphKey("cnn", (1, 8, 8), 10, 8, (), width=8, scaled=True, keep=0.2)
    key, model = keyed_model(base)
    x, y = batch(key)
    plan = one_step_plan(key, model)
    fused_loss, fused = run_graph(key, model, x, y, plan, tmp_path)
    exact_loss, exact = run_graph(replace(key, fuse_relu=False), model, x, y, plan, tmp_path)
    assert fused_loss == pytest.approx(exact_loss, rel=1e-6)
    for name in ["v/fc", "v/conv3", "d/conv3.gain"]:  # relu(conv3) feeds pooling: not fused
        np.testing.assert_allclose(fused[name], exact[name], rtol=1e-5, atol=1e-7)
    assert not np.allclose(fused["v/conv1"], exact["v/conv1"], rtol=1e-4, atol=0)


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
    images = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))  # scattered channels-last
    for encoding in ENCODINGS:
        saved = Compressed.of(images, encoding, keep=0.3)
        assert torch.equal(saved.channels_last(), channels_last(saved.dense()))


@pytest.mark.parametrize("one_sample_chunks", [False, True])  # im2col's columns for the batch, or sample by sample
@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 1, 1), (2, 0, 1), (1, 1, 4), (2, 1, 4)])
def test_hand_written_conv_backward_matches_autograd(stride, padding, groups, one_sample_chunks, monkeypatch):
    if one_sample_chunks:
        monkeypatch.setattr(im2col, "_CHUNK", 1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 7, 7, generator=gen, requires_grad=True)
    w = torch.randn(8 if groups == 1 else 4, 4 // groups, 3, 3, generator=gen, requires_grad=True)
    out = F.conv2d(x, w, None, stride, padding, 1, groups)
    grad = torch.randn(out.shape, generator=gen)
    gx, gw = torch.autograd.grad(out, [x, w], grad)
    torch.testing.assert_close(weight_grad(x.detach(), grad, list(w.shape), stride, padding, groups), gw)
    torch.testing.assert_close(input_grad(grad, w.detach(), list(x.shape), stride, padding, groups), gx)
    shape, k, like = list(w.shape), w.shape[-1], x.detach()
    forward = im2col_matrix(w.detach(), None, shape, groups, like)
    torch.testing.assert_close(Im2colConv.forward(x.detach(), forward, None, k, stride, padding, groups), out)
    backward = im2col_matrix(w.detach(), None, shape, groups, like, backward=True)
    rows = channels_last(x.detach())
    ix, iw, ib = Im2colConv.backward(grad, rows, backward, list(x.shape), k, stride, padding, groups, True)
    torch.testing.assert_close(ix, gx)
    order = Im2colConv.order(groups, backward=True)
    torch.testing.assert_close(iw, gw.permute(order).reshape(iw.shape))
    torch.testing.assert_close(ib, grad.sum((0, 2, 3)))
    # a ReLU output as input: the ReLU's backward mask applied with the input gradient
    relu = channels_last(x.detach().relu())
    rx, _, _ = Im2colConv.backward(grad, relu, backward, list(x.shape), k, stride, padding, groups, True, relu=True)
    full_gx = torch.autograd.grad(F.conv2d(x.relu(), w, None, stride, padding, 1, groups), x, grad)[0]
    torch.testing.assert_close(rx, full_gx)
    # packed: the active values scattered straight into each matrix's layout
    positions = torch.randperm(w.numel(), generator=gen)[: w.numel() // 3].to(torch.int32)
    values, active = w.detach().reshape(-1)[positions.long()], torch.zeros(w.numel())
    active[positions.long()] = 1
    masked = w.detach() * active.reshape(w.shape)
    for back in (False, True):
        packed = im2col_matrix(values, positions, shape, groups, like, backward=back)
        assert torch.equal(packed, im2col_matrix(masked, None, shape, groups, like, backward=back))


def test_packed_standardize_equals_masked_standardize():
    gen = torch.Generator().manual_seed(0)
    weight, gain = torch.randn(6, 3, 3, 3, generator=gen), torch.rand(6, 1, 1, 1, generator=gen) + 0.5
    mask = (torch.rand(weight.shape, generator=gen) < 0.3).float()
    mask[5] = 0  # a channel with no active weight
    mask[0, 0, 0, 0] = 1
    positions = torch.nonzero(mask.flatten()).flatten()
    packed = packed_standardize(weight.flatten()[positions], positions, weight.shape, gain)
    torch.testing.assert_close(packed, standardize(weight, mask, gain).flatten()[positions])


def test_layout_roles_and_fair_baselines():
    """FedDST-style keys carry no BaE tensors or scalars; FedMef keys carry the marked set and the
    schedule's scalars; dense layouts have no growth graph."""
    fedmef, _ = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 4, (), width=4, extrusion=True))
    feddst, _ = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 4, (), width=4, layout="masked"))
    dense, _ = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 4, (), width=4, layout="dense"))
    roles = {name: {t.role for t in layout_of(key).tensors} for name, key in
             [("fedmef", fedmef), ("feddst", feddst), ("dense", dense)]}  # fmt: skip
    assert {"values", "positions", "marked", "counter"} <= roles["fedmef"]
    assert roles["feddst"] == {"weight", "mask", "param", "data", "plan"}
    assert roles["dense"] == {"weight", "param", "data", "plan"}
    assert [t.name for t in layout_of(feddst).tensors if t.role == "plan"] == [p.LR]
    assert "growth" not in layout_of(dense).graph_inputs and "growth" in layout_of(feddst).graph_inputs
    for layer, k in growth_sizes(fedmef).items():
        assert 0 < k <= dict(fedmef.layer_nnz)[layer]


def test_layout_rejects_wrong_nnz():
    key, _ = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 4, (), width=8))
    with pytest.raises(ValueError, match="nnz"):
        layout_of(replace(key, layer_nnz=(("conv1", 10**6),) + key.layer_nnz[1:]))
    with pytest.raises(ValueError, match="do not match"):
        layout_of(replace(key, layer_nnz=key.layer_nnz[1:]))
