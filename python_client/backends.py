"""Training backends: where a client's local steps run. One interface, one class per runtime.

A backend receives the client's model as the state container (weights and masks already
loaded from the server's message) and trains it in place; the ClientApp never knows which
runtime did the work. ``torch`` runs eager PyTorch and is the reference the exported runtimes
are tested against.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from fedmef import training
from fedmef.training import LocalPlan


class Backend(Protocol):
    def train(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: LocalPlan) -> float:
        """Run the plan's local steps on (x, y), updating ``model``; return the mean loss."""

    def growth(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: dict[str, int]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, top-``count`` inactive |gradient| (flat indices, magnitudes) on one batch."""


class TorchBackend:
    def train(self, model, x, y, plan):
        return training.local_train(model, x, y, plan)

    def growth(self, model, x, y, counts):
        return training.growth_signal(model, x, y, counts)


def make_backend(name: str) -> Backend:
    if name == "torch":
        return TorchBackend()
    raise ValueError(f"unknown backend {name!r}; choose 'torch', 'ort' or 'executorch'")
