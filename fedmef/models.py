"""Models used in FedMef's experiments, built from prunable layers (FedMef §4.1).

* ``SmallCNN`` — three convolutions and a classifier for 1x8x8 digits (the embedded default).
* ``ResNet18NF`` — BN-free ResNet18 for 3x32x32 input: NSConv everywhere, SkipInit residual
  gains (Bachlechner et al.) instead of BatchNorm.
* ``MobileNetV2NF`` — BN-free MobileNetV2 (inverted residuals, depthwise NSConv, SkipInit).

Every model is built by ``build_model(name, conv=ConvSpec(...))``; ``prunable_layers(model)`` is
the one interface the rest of the code uses to reach weights and masks. No max-pool anywhere:
ExecuTorch 1.5.1's max-pool backward is broken (see the runtime notes), so downsampling is by
strided convolution and global average pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from fedmef.activation_pruning import MaskedConv2d, MaskedLinear, Prunable, effective_weight


@dataclass(frozen=True)
class ConvSpec:
    """How every convolution of a model is built: NSConv scaling and SAP keep fraction."""

    scaled: bool = False
    keep: float = 1.0

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> MaskedConv2d:
        return MaskedConv2d(
            cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
            bias=True, scaled=self.scaled, keep=self.keep,
        )  # fmt: skip


class SmallCNN(nn.Module):
    def __init__(self, conv: ConvSpec, in_channels: int = 1, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.conv1 = conv.conv(in_channels, width, 3)
        self.conv2 = conv.conv(width, 2 * width, 3, stride=2)
        self.conv3 = conv.conv(2 * width, 4 * width, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = MaskedLinear(4 * width * 4, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, 8, 8)
        x = torch.relu(self.conv1(x))  # (B, w, 8, 8)
        x = torch.relu(self.conv2(x))  # (B, 2w, 4, 4)
        x = torch.relu(self.conv3(x))  # (B, 4w, 2, 2)
        return self.fc(torch.flatten(self.pool(x), 1))


class SkipGain(nn.Module):
    """A scalar residual-branch gain initialised at zero (SkipInit): replaces BatchNorm."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.alpha


class BasicBlockNF(nn.Module):
    def __init__(self, conv: ConvSpec, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv.conv(cin, cout, 3, stride)
        self.conv2 = conv.conv(cout, cout, 3)
        self.gain = SkipGain()
        self.shortcut = conv.conv(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        branch = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(self.shortcut(x) + self.gain(branch))


class ResNet18NF(nn.Module):
    def __init__(self, conv: ConvSpec, in_channels: int = 3, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.stem = conv.conv(in_channels, width, 3)
        blocks, cin = [], width
        for stage, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlockNF(conv, cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = MaskedLinear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, 32, 32)
        x = self.blocks(torch.relu(self.stem(x)))  # (B, 8w, 4, 4)
        return self.fc(x.mean(dim=(2, 3)))


class InvertedResidualNF(nn.Module):
    def __init__(self, conv: ConvSpec, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv.conv(cin, hidden, 1), nn.ReLU()]
        layers += [conv.conv(hidden, hidden, 3, stride, groups=hidden), nn.ReLU(), conv.conv(hidden, cout, 1)]
        self.branch = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.gain = SkipGain() if self.residual else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.gain(self.branch(x))
        return x + out if self.residual else out


class MobileNetV2NF(nn.Module):
    # (expansion, channels, repeats, stride) as in Sandler et al., strides adapted to 32x32
    SETTINGS = [
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]

    def __init__(self, conv: ConvSpec, in_channels: int = 3, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        channels = max(8, int(32 * width))
        self.stem = conv.conv(in_channels, channels, 3)
        blocks = []
        for expand, cout, repeats, stride in self.SETTINGS:
            cout = max(8, int(cout * width))
            for index in range(repeats):
                blocks.append(InvertedResidualNF(conv, channels, cout, stride if index == 0 else 1, expand))
                channels = cout
        self.blocks = nn.Sequential(*blocks)
        last = max(64, int(1280 * width))
        self.head = conv.conv(channels, last, 1)
        self.fc = MaskedLinear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, 32, 32)
        x = self.blocks(torch.relu(self.stem(x)))
        x = torch.relu(self.head(x))  # (B, last, 4, 4)
        return self.fc(x.mean(dim=(2, 3)))


MODELS = {
    "cnn": SmallCNN,
    "resnet18": ResNet18NF,
    "mobilenetv2": MobileNetV2NF,
}


def build_model(name: str, conv: ConvSpec, in_channels: int, num_classes: int, width: float | None = None) -> nn.Module:
    """Build a model by name; ``width`` scales channels (reduced variants for tests)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    factory = partial(MODELS[name], conv, in_channels=in_channels, num_classes=num_classes)
    if width is None:
        return factory()
    return factory(width=width if name == "mobilenetv2" else int(width))  # cnn/resnet18: channel count


def prunable_layers(model: nn.Module) -> dict[str, Prunable]:
    """Every masked conv/linear layer by module name; depthwise convs are kept dense."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, Prunable) and getattr(module, "groups", 1) == 1
    }


def effective_weights(model: nn.Module) -> dict[str, Tensor]:
    """Every prunable layer's effective weight (what its forward pass multiplies by), detached:
    what the server ranks by to mark and to prune."""
    with torch.no_grad():
        return {name: effective_weight(layer) for name, layer in prunable_layers(model).items()}


def standardised_layers(model: nn.Module) -> set[str]:
    """Names of the prunable layers with scaled weight standardisation (NSConv)."""
    return {name for name, layer in prunable_layers(model).items() if getattr(layer, "gain", None) is not None}


def set_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Install ``masks`` (any dtype, 0 = pruned) on the model's prunable layers and zero pruned weights."""
    layers = prunable_layers(model)
    with torch.no_grad():
        for name, mask in masks.items():
            layer = layers[name]
            layer.mask.copy_(mask.reshape(layer.mask.shape).to(layer.mask.dtype))
            layer.weight.mul_(layer.mask)
