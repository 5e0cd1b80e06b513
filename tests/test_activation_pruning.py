"""SAP: top-k compression, the sap_conv2d op's gradients and memory, NSConv standardisation."""

import pytest
import torch
import torch.nn.functional as F

from fedmef.activation_pruning import (
    MaskedConv2d,
    MaskedLinear,
    compress,
    decompress,
    effective_weight,
    kept_count,
    sap_conv2d,
    standardize,
)


def test_compress_keeps_per_sample_top_k_and_round_trips():
    x = torch.tensor(
        [
            [[[1.0, -5.0, 2.0], [0.0, 3.0, -0.5]]],
            [[[0.1, 0.2, -0.3], [4.0, -6.0, 0.05]]],
        ]
    )  # (2, 1, 2, 3): 6 values per sample, keep 0.5 -> 3 each
    values, positions = compress(x, 0.5)
    assert values.shape == (2, 3) and positions.shape == (2, 3) and positions.dtype == torch.int32
    kept = [dict(zip(p.tolist(), v.tolist(), strict=True)) for p, v in zip(positions, values, strict=True)]
    assert kept == [{1: -5.0, 4: 3.0, 2: 2.0}, {4: -6.0, 3: 4.0, 2: pytest.approx(-0.3)}]
    restored = decompress(values, positions, list(x.shape))
    expected = torch.tensor(
        [
            [[[0.0, -5.0, 2.0], [0.0, 3.0, 0.0]]],
            [[[0.0, 0.0, -0.3], [4.0, -6.0, 0.0]]],
        ]
    )
    assert torch.equal(restored, expected)


def test_compress_with_keep_one_is_lossless():
    x = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    values, positions = compress(x, 1.0)
    assert values.shape == (3, 32)
    assert torch.equal(decompress(values, positions, list(x.shape)), x)


@pytest.mark.parametrize(
    ("numel", "keep", "expected"),
    [(10, 0.25, 3), (10, 0.5, 5), (10, 1.0, 10), (10, 0.01, 1), (3, 0.5, 2), (10, 1 - 0.7, 3), (64, 1 - 0.7, 20)],
)
def test_kept_count_rounds_up_without_float_noise(numel, keep, expected):
    # 1 - 0.7 is 0.30000000000000004: ten of those must still keep 3, not 4
    assert kept_count(numel, keep) == expected


CONV_CASES = {
    "stride2_pad1": dict(cin=2, cout=3, stride=2, padding=1, groups=1, bias=True),
    "no_bias_pad0": dict(cin=2, cout=4, stride=1, padding=0, groups=1, bias=False),
    "groups2": dict(cin=4, cout=6, stride=2, padding=1, groups=2, bias=True),
}


def conv_inputs(cin, cout, groups, bias, **_):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, cin, 6, 6, generator=gen, dtype=torch.float64)
    weight = torch.randn(cout, cin // groups, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(cout, generator=gen, dtype=torch.float64) if bias else None
    return x, weight, b


def grads(fn, x, weight, bias):
    leaves = [t.clone().requires_grad_(True) if t is not None else None for t in (x, weight, bias)]
    out = fn(*leaves)
    upstream = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * upstream).sum().backward()
    return out.detach(), upstream, [t.grad if t is not None else None for t in leaves]


@pytest.mark.parametrize("case", CONV_CASES)
def test_sap_conv2d_with_keep_one_matches_conv2d_autograd(case):
    c = CONV_CASES[case]
    x, weight, bias = conv_inputs(**c)
    args = ([c["stride"]] * 2, [c["padding"]] * 2, c["groups"])
    out, _, got = grads(lambda x, w, b: sap_conv2d(x, w, b, *args, 1.0), x, weight, bias)
    ref_out, _, ref = grads(
        lambda x, w, b: F.conv2d(x, w, b, c["stride"], c["padding"], 1, c["groups"]), x, weight, bias
    )
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for g, r in zip(got, ref, strict=True):
        if r is None:
            assert g is None
        else:
            torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES)
def test_sap_conv2d_with_keep_below_one(case):
    c = CONV_CASES[case]
    keep = 0.25
    x, weight, bias = conv_inputs(**c)
    stride, padding, groups = c["stride"], c["padding"], c["groups"]
    _, upstream, (gx, gw, gb) = grads(
        lambda x, w, b: sap_conv2d(x, w, b, [stride] * 2, [padding] * 2, groups, keep), x, weight, bias
    )
    _, _, (ref_gx, ref_gw, ref_gb) = grads(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, 1, groups), x, weight, bias
    )
    # the input gradient needs only the weight: exact
    torch.testing.assert_close(gx, ref_gx, rtol=1e-12, atol=1e-12)
    if bias is not None:
        torch.testing.assert_close(gb, ref_gb, rtol=1e-12, atol=1e-12)
    # the weight gradient sees the input with all but the top 25 % (by |x|, per sample) zeroed
    k = c["cin"] * 6 * 6 // 4  # a quarter of the per-sample numel (72 or 144): no rounding involved
    flat = x.reshape(2, -1)
    threshold = flat.abs().sort(dim=1, descending=True).values[:, k - 1 : k]
    masked_x = (flat * (flat.abs() >= threshold)).view_as(x)
    assert int((masked_x != 0).sum()) == 2 * k
    ref_masked = torch.nn.grad.conv2d_weight(masked_x, weight.shape, upstream, stride, padding, groups=groups)
    torch.testing.assert_close(gw, ref_masked, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(gw, ref_gw)  # and it is an approximation


def saved_bytes(keep: float, x: torch.Tensor, weight: torch.Tensor) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if keep < 1:
            sap_conv2d(x, weight, None, [1, 1], [1, 1], 1, keep)
        else:
            F.conv2d(x, weight, None, 1, 1)
    return total


def test_saved_bytes_shrink_with_drop_fraction():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)  # 192 values per sample
    weight = torch.randn(5, 3, 3, 3, requires_grad=True)
    weight_bytes = 4 * weight.numel()
    dense = saved_bytes(1.0, x, weight)
    assert dense == 4 * x.numel() + weight_bytes  # plain conv: input + weight
    keeps = [0.9, 0.7, 0.5, 0.3, 0.1]
    measured = [saved_bytes(keep, x, weight) for keep in keeps]
    # values (float32) + positions (int32) per kept element, plus the weight
    assert measured == [8 * 4 * kept_count(192, keep) + weight_bytes for keep in keeps]
    assert measured == sorted(measured, reverse=True)
    # int32 positions double the cost per kept value: drop 0.5 breaks even, a larger drop saves
    assert measured[2] == dense
    assert measured[-1] < measured[3] < dense


def test_standardize_hand_computed():
    weight = torch.tensor([1.0, 2.0, 3.0, 100.0, 2.0, -2.0, 0.0, 0.0]).view(2, 1, 2, 2)
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]).view(2, 1, 2, 2)
    gain = torch.tensor([2.0, 0.5]).view(2, 1, 1, 1)
    out = standardize(weight, mask, gain)
    # channel 0: active [1, 2, 3], mean 2, sum of squared deviations 2 -> 2 * [-1, 0, 1] / sqrt(2)
    # channel 1: active [2, -2, 0, 0], mean 0, sum of squares 8 -> 0.5 * [2, -2, 0, 0] / sqrt(8)
    r2 = 2**0.5
    expected = torch.tensor([-2 / r2, 0.0, 2 / r2, 0.0, 0.5 / r2, -0.5 / r2, 0.0, 0.0]).view(2, 1, 2, 2)
    torch.testing.assert_close(out, expected)
    assert out.view(2, -1)[0, 3] == 0.0  # masked entry exactly zero despite w = 100
    active = mask.bool().view(2, -1)
    for channel in range(2):
        values = out.view(2, -1)[channel][active[channel]]
        assert float(values.mean()) == pytest.approx(0.0, abs=1e-7)
        # variance over the active weights is gain^2 / fan_in (NF-Net scaling)
        assert float(values.pow(2).mean()) == pytest.approx(float(gain[channel]) ** 2 / len(values))


def test_standardize_constant_or_empty_channel_is_zero_not_nan():
    weight = torch.tensor([4.0, 4.0, 4.0, 7.0]).view(2, 1, 1, 2)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(2, 1, 1, 2)
    out = standardize(weight, mask, torch.ones(2, 1, 1, 1))
    assert torch.equal(out, torch.zeros(2, 1, 1, 2))


def test_masked_conv_scaled_keeps_pruned_weights_at_zero_and_no_gradient_there():
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, 3, padding=1, scaled=True)
    mask = (torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    conv.mask.copy_(mask)
    used = conv.used_weight()
    assert torch.all(used[mask == 0] == 0)
    torch.testing.assert_close(used, standardize(conv.weight, mask, conv.gain))
    x = torch.randn(2, 2, 5, 5)
    out = conv(x)
    torch.testing.assert_close(out, F.conv2d(x, used, conv.bias, 1, 1))
    out.square().sum().backward()
    assert torch.all(conv.weight.grad[mask == 0] == 0)
    assert conv.gain.grad is not None and conv.gain.shape == (3, 1, 1, 1)


def test_effective_weight_is_what_the_forward_multiplies_by_and_can_hold_the_gain_constant():
    conv = MaskedConv2d(4, 1, 1, bias=False, scaled=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 100.0]).view(1, 4, 1, 1))
        conv.gain.fill_(2.0)
    conv.mask.copy_(torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 4, 1, 1))
    r2 = 2**0.5  # active [1, 2, 3]: mean 2, sum of squared deviations 2
    expected = torch.tensor([-2 / r2, 0.0, 2 / r2, 0.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(effective_weight(conv), expected)
    assert torch.equal(effective_weight(conv), conv.used_weight())
    held = effective_weight(conv, detach_gain=True)
    torch.testing.assert_close(held, expected)
    held.square().sum().backward()
    assert conv.gain.grad is None and conv.weight.grad is not None
    linear = MaskedLinear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, 5.0]]))
    linear.mask.copy_(torch.tensor([[0.0, 1.0]]))
    assert effective_weight(linear).tolist() == [[0.0, 5.0]] == effective_weight(linear, detach_gain=True).tolist()


def test_masked_conv_unscaled_and_linear_multiply_by_mask():
    conv = MaskedConv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    conv.mask.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
    assert conv.gain is None
    assert torch.equal(conv.used_weight(), torch.tensor([[[[1.0, 0.0], [0.0, 4.0]]]]))
    assert torch.equal(conv(torch.ones(1, 1, 2, 2)), torch.tensor([[[[5.0]]]]))
    linear = MaskedLinear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, 5.0]]))
    linear.mask.copy_(torch.tensor([[0.0, 1.0]]))
    assert torch.equal(linear(torch.tensor([[1.0, 2.0]])), torch.tensor([[10.0]]))


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.5])
def test_invalid_keep_raises(keep):
    with pytest.raises(ValueError, match="keep"):
        MaskedConv2d(1, 1, 3, keep=keep)


@pytest.mark.parametrize("kwargs", [{"dilation": 2}, {"padding": "same"}, {"padding_mode": "reflect", "padding": 1}])
def test_unsupported_conv_options_raise(kwargs):
    with pytest.raises(ValueError, match="padding"):
        MaskedConv2d(1, 1, 3, **kwargs)


def test_train_mode_uses_sap_and_eval_mode_uses_plain_conv():
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, 3, padding=1, keep=0.25)
    x = torch.randn(2, 2, 6, 6)

    def weight_grad(train: bool):
        conv.train(train)
        conv.zero_grad()
        conv(x).square().sum().backward()
        return conv.weight.grad.clone()

    exact = torch.autograd.grad(F.conv2d(x, conv.weight, conv.bias, 1, 1).square().sum(), conv.weight)[0]
    torch.testing.assert_close(weight_grad(False), exact)
    assert not torch.allclose(weight_grad(True), exact)
