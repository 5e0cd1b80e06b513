"""Training backends: where a client's local steps run. One interface, one class per runtime kind.

A backend receives the client's model as the state container (weights and masks already loaded
from the server's message) and trains it in place; the ClientApp never knows which runtime did
the work. ``TorchBackend`` runs eager PyTorch, the reference. ``RuntimeBackend`` runs the
server-exported step graph in ONNX Runtime or ExecuTorch (the ``StepRunner`` decides which):
batches, learning rate and extrusion coefficient come from the same ``fedmef.training`` helpers,
so every backend takes the same steps.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from fedmef import training
from fedmef.config import BACKEND_RUNTIMES
from fedmef.export.layout import GraphKey, layout_of
from fedmef.export.runtime import StepRunner
from fedmef.export.state import load_state, state_of
from fedmef.training import LocalPlan

Growth = dict[str, tuple[torch.Tensor, torch.Tensor]]


class Backend(Protocol):
    def train(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: LocalPlan) -> float:
        """Run the plan's local steps on (x, y), updating ``model``; return the mean loss."""

    def growth(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: dict[str, int]) -> Growth:
        """Per layer, top-``count`` inactive |gradient| (flat indices, magnitudes) on one batch."""


class TorchBackend:
    def train(self, model, x, y, plan):
        return training.local_train(model, x, y, plan)

    def growth(self, model, x, y, counts):
        return training.growth_signal(model, x, y, counts)


class RuntimeBackend:
    def __init__(self, runner: StepRunner):
        self.runner = runner
        self.key = GraphKey.from_dict(runner.manifest.key)

    def train(self, model, x, y, plan):
        if plan.batch_size != self.key.batch_size:
            raise ValueError(f"plan batch size {plan.batch_size} but the graph was exported for {self.key.batch_size}")
        layout = layout_of(self.key, model)
        state = state_of(model, layout, plan.marked)
        names = [f"{layer}.weight" for layer in layout.prunable]
        xs, ys = x.numpy(), y.numpy()
        batches = training.batch_indices(len(xs), plan.batch_size, plan.epochs, plan.seed)
        # lazily evaluated before each step, so it reads the current ``state``
        norms = (
            sum(float(np.abs(state[n] * state[n.removesuffix("weight") + "marked"]).sum()) for n in names)
            for _ in batches
        )
        losses = []
        for batch, (lr, lam) in zip(batches, training.step_scalars(plan, len(batches), norms), strict=True):
            loss, state = self.runner.step(state, xs[batch], ys[batch], lr, lam)
            losses.append(loss)
        load_state(model, layout, state)
        return float(np.mean(losses))

    def growth(self, model, x, y, counts):
        layout = layout_of(self.key, model)
        grads = self.runner.growth(state_of(model, layout), x.numpy(), y.numpy())
        return training.strongest_inactive({name: torch.from_numpy(grads[name]) for name in counts}, model, counts)


def make_backend(name: str, runner: StepRunner | None = None) -> Backend:
    if name == "torch":
        return TorchBackend()
    if name in BACKEND_RUNTIMES:
        if runner is None:
            raise ValueError(f"backend {name!r} needs the round's exported artifact, and none was sent")
        if runner.manifest.runtime != BACKEND_RUNTIMES[name]:
            raise ValueError(f"backend {name!r} cannot run a {runner.manifest.runtime} artifact")
        return RuntimeBackend(runner)
    raise ValueError(f"unknown backend {name!r}; choose 'torch', 'ort' or 'executorch'")
