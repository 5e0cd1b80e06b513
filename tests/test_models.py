"""Model shapes, prunable layer names, and the SkipInit identity of fresh residual blocks."""

import pytest
import torch

from fedmef.activation_pruning import MaskedConv2d, standardize
from fedmef.models import (
    BasicBlockNF,
    ConvSpec,
    InvertedResidualNF,
    SkipGain,
    build_model,
    effective_weights,
    prunable_layers,
    standardised_layers,
)

CASES = {
    "cnn": dict(in_channels=1, size=8, width=None),
    "resnet18": dict(in_channels=3, size=32, width=8),
    "mobilenetv2": dict(in_channels=3, size=32, width=0.25),
}


def build(name, conv=None):
    case = CASES[name]
    return build_model(name, conv or ConvSpec(), case["in_channels"], 10, case["width"])


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("conv", [ConvSpec(), ConvSpec(scaled=True, keep=0.3)], ids=["plain", "nsconv-sap"])
def test_output_is_batch_by_classes(name, conv):
    case = CASES[name]
    torch.manual_seed(0)
    model = build(name, conv)
    out = model(torch.randn(2, case["in_channels"], case["size"], case["size"]))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_cnn_prunable_layers():
    layers = prunable_layers(build("cnn"))
    assert list(layers) == ["conv1", "conv2", "conv3", "fc"]
    assert [tuple(layer.weight.shape) for layer in layers.values()] == [
        (32, 1, 3, 3), (64, 32, 3, 3), (128, 64, 3, 3), (10, 512),
    ]  # fmt: skip


def test_resnet18_prunable_layers():
    names = list(prunable_layers(build("resnet18")))
    assert len(names) == 1 + 8 * 2 + 3 + 1  # stem, two convs per block, three projection shortcuts, fc
    assert names[:4] == ["stem", "blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1"]
    assert [n for n in names if "shortcut" in n] == ["blocks.2.shortcut", "blocks.4.shortcut", "blocks.6.shortcut"]
    assert names[-1] == "fc"


def test_mobilenetv2_prunable_layers_exclude_depthwise():
    model = build("mobilenetv2")
    layers = prunable_layers(model)
    depthwise = [n for n, m in model.named_modules() if isinstance(m, MaskedConv2d) and m.groups > 1]
    assert len(depthwise) == 17  # one per inverted residual block
    assert not set(depthwise) & set(layers)
    # stem, block 0 (no expansion: project only), 16 blocks x (expand, project), head, fc
    assert len(layers) == 1 + 1 + 16 * 2 + 1 + 1
    assert list(layers)[:3] == ["stem", "blocks.0.branch.2", "blocks.1.branch.0"]
    assert all(getattr(layer, "groups", 1) == 1 for layer in layers.values())


@pytest.mark.parametrize("name", CASES)
def test_prunable_layer_names_are_stable(name):
    torch.manual_seed(0)
    first = list(prunable_layers(build(name)))
    torch.manual_seed(1)
    assert list(prunable_layers(build(name))) == first


def test_float_width_from_run_config_builds_int_channel_models():
    # RunConfig.model_width is a float; cnn and resnet18 take a channel count
    assert build_model("cnn", ConvSpec(), 1, 10, 4.0).conv1.out_channels == 4
    assert build_model("resnet18", ConvSpec(), 3, 10, 8.0).stem.out_channels == 8
    assert build_model("mobilenetv2", ConvSpec(), 3, 10, 0.5).stem.out_channels == 16


def test_conv_spec_is_applied_to_every_conv():
    model = build("cnn", ConvSpec(scaled=True, keep=0.4))
    convs = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    assert len(convs) == 3
    assert all(c.scaled and c.keep == 0.4 and c.gain is not None for c in convs)
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2)]


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", ConvSpec(), 3, 10)


def test_skip_gain_starts_at_zero():
    gain = SkipGain()
    assert float(gain.alpha.detach()) == 0.0
    assert torch.equal(gain(torch.tensor([1.0, -2.0])), torch.tensor([0.0, 0.0]))


def test_fresh_resnet_block_is_relu_of_shortcut():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    identity_block = BasicBlockNF(ConvSpec(), 4, 4, stride=1)
    assert torch.equal(identity_block(x), torch.relu(x))
    projection_block = BasicBlockNF(ConvSpec(), 4, 8, stride=2)
    assert torch.equal(projection_block(x), torch.relu(projection_block.shortcut(x)))
    with torch.no_grad():
        identity_block.gain.alpha.fill_(1.0)
    assert not torch.equal(identity_block(x), torch.relu(x))


def test_fresh_inverted_residual_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4)
    block = InvertedResidualNF(ConvSpec(), 8, 8, stride=1, expand=6)
    assert block.residual
    assert torch.equal(block(x), x)
    downsample = InvertedResidualNF(ConvSpec(), 8, 16, stride=2, expand=6)
    assert not downsample.residual and downsample(x).shape == (2, 16, 2, 2)


@pytest.mark.parametrize("scaled", [True, False])
def test_effective_weights_of_every_prunable_layer(scaled):
    model = build_model("cnn", ConvSpec(scaled=scaled), 1, 10, width=2)
    layers = prunable_layers(model)
    for layer in layers.values():
        layer.mask.copy_((torch.rand(layer.mask.shape, generator=torch.Generator().manual_seed(0)) < 0.5).float())
    effective = effective_weights(model)
    assert list(effective) == list(layers) and not any(w.requires_grad for w in effective.values())
    assert standardised_layers(model) == ({"conv1", "conv2", "conv3"} if scaled else set())
    conv = layers["conv2"]
    expected = standardize(conv.weight, conv.mask, conv.gain) if scaled else conv.weight * conv.mask
    assert torch.equal(effective["conv2"], expected.detach())
    assert torch.equal(effective["fc"], layers["fc"].weight.detach() * layers["fc"].mask)
