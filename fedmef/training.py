"""Local training of one client in eager PyTorch: the reference every runtime must match.

One local step on batch (x, y) with learning rate lr and extrusion coefficient lam is::

    loss = cross_entropy(model(x), y) + lam * sum_l ||W_marked,l||^2      (BaE, extrusion.py)
    p   <- p - lr * (grad p + weight_decay * p)     for every trainable parameter
    w   <- w * mask                                 for every prunable weight

W is the effective weight (for an NSConv the standardised, masked weight, with the gain held
constant in the penalty). Plain SGD, no momentum: no optimizer state, which keeps the exported
step small. Batches are fixed-size and come from the contract's language-neutral order
(``protocol.batches``), so exported graphs keep static shapes and every client, in any language,
sees identical batches.
The growth signal is the gradient of the loss w.r.t. each layer's used weight on one batch after
training, read at inactive positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedmef import extrusion, protocol
from fedmef.activation_pruning import effective_weight
from fedmef.extrusion import ExtrusionSchedule
from fedmef.models import prunable_layers
from fedmef.sparsity import top_inactive


@dataclass(frozen=True)
class LocalPlan:
    """What the server asks of a client this round (all decided by the server)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    #: flat indices per layer of the weights marked for extrusion; empty: no extrusion this round
    marked: dict[str, torch.Tensor] = field(default_factory=dict)
    lambda_max: float = 0.3
    #: rho: lambda reaches lambda_max after this fraction of the window's steps
    lambda_ramp: float = 1.0
    penalty: str = "squared"
    #: how many of the window's rounds came before this one (the ramp continues across them)
    window_offset_rounds: int = 0
    window_rounds: int = 1
    base_lr: float = 0.0
    #: per layer, how many growth candidates to report (empty: not an adjustment round)
    growth_counts: dict[str, int] = field(default_factory=dict)
    #: FedDST: per layer, how many weights to prune and regrow locally after training (``feddst``)
    readjust_counts: dict[str, int] = field(default_factory=dict)
    seed: int = 0


def steps_per_round(num_samples: int, plan: LocalPlan) -> int:
    return len(protocol.batches(num_samples, plan.batch_size, plan.epochs, plan.seed))


def extrusion_schedule(plan: LocalPlan, steps: int) -> ExtrusionSchedule | None:
    if not plan.marked:
        return None
    return ExtrusionSchedule(
        total_steps=steps * plan.window_rounds, base_lr=plan.base_lr or plan.lr,
        lambda_max=plan.lambda_max, ramp=plan.lambda_ramp, penalty=plan.penalty,
    )  # fmt: skip


def step_scalars(plan: LocalPlan, steps: int, step: int, marked_norm: float) -> tuple[float, float]:
    """(lr, lambda) of local step ``step``; ``marked_norm`` is ||W_marked||_1 before the step."""
    schedule = extrusion_schedule(plan, steps)
    if schedule is None:
        return plan.lr, 0.0
    window_step = plan.window_offset_rounds * steps + step
    return schedule.learning_rate(window_step, plan.lr, marked_norm), schedule.coefficient(window_step)


def marked_effective(layers: dict, marked: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The marked effective weights (gain held constant), differentiable w.r.t. the raw weights."""
    effective = {name: effective_weight(layers[name], detach_gain=True) for name in marked}
    return extrusion.marked_values(effective, marked)


def local_train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: LocalPlan) -> float:
    """Train ``model`` in place on (x, y) as the plan says; returns the mean training loss."""
    layers = prunable_layers(model)
    batches = protocol.batches(len(x), plan.batch_size, plan.epochs, plan.seed)
    model.train()
    losses = []
    for step, batch in enumerate(batches):
        marked = marked_effective(layers, plan.marked) if plan.marked else []
        lr, lam = step_scalars(plan, len(batches), step, extrusion.marked_norm(marked))
        loss = F.cross_entropy(model(x[batch]), y[batch])
        if lam:
            loss = loss + extrusion.penalty(marked, lam, plan.penalty)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                if param.grad is not None:
                    param.sub_(lr * (param.grad + plan.weight_decay * param))
            for layer in layers.values():
                layer.weight.mul_(layer.mask)
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def growth_signal(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: dict[str, int]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (flat indices, |grad|) of the ``count`` largest gradients at inactive weights."""
    layers = prunable_layers(model)
    model.train()
    for layer in layers.values():
        layer.capture = True
    try:
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, [layers[name].captured for name in counts])
    finally:
        for layer in layers.values():
            layer.capture, layer.captured = False, None
    return strongest_inactive(dict(zip(counts, grads, strict=True)), model, counts)


def strongest_inactive(
    gradients: dict[str, torch.Tensor], model: nn.Module, counts: dict[str, int]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (flat indices, |grad|) of the ``count`` largest gradients at inactive weights."""
    layers = prunable_layers(model)
    signal = {}
    for name, count in counts.items():
        magnitude = gradients[name].detach().abs().flatten()
        indices = top_inactive(magnitude, layers[name].mask.bool(), count)
        signal[name] = (indices, magnitude[indices])
    return signal


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on (x, y)."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    return loss / len(x), correct / len(x)
