"""Budget-aware extrusion, BaE (FedMef §3.2, Eq. 4–6).

Before an adjustment the server marks, per layer, the active weights it is about to prune (the
prune rule of ``sparsity.lowest_active``). Clients add a penalty on the marked weights so their
information is pushed into the surviving weights before the cut, and keep the learning rate high
enough for that to happen within the round budget. Everything here is a pure function of the
step number and tensors; the server decides which rounds extrude and sends the marked sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedmef.sparsity import Masks, adjustment_counts, lowest_active


@dataclass(frozen=True)
class ExtrusionSchedule:
    """Coefficients of one client's extrusion window of ``total_steps`` local steps.

    ``lambda_step``/``lambda_max``: the penalty coefficient ramps by lambda_step per local step up
    to lambda_max. ``base_lr`` is eta_0. ``penalty`` is ``"squared"`` (lambda * ||w||^2, the
    default of the older reference) or ``"norm"`` (lambda * ||w||_2, FedPruning's form).
    """

    total_steps: int
    base_lr: float
    lambda_step: float = 1e-4
    lambda_max: float = 0.01
    penalty: str = "squared"

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise ValueError(f"extrusion window must have steps, got {self.total_steps}")
        if self.penalty not in ("squared", "norm"):
            raise ValueError(f"penalty must be 'squared' or 'norm', got {self.penalty!r}")

    def coefficient(self, step: int) -> float:
        """lambda at local step ``step`` (0-based): ramps linearly, capped."""
        return min(self.lambda_max, self.lambda_step * (step + 1))

    def budget_factor(self, step: int) -> float:
        """p(t) = (2T - 2t) / (2T - t): 1 at the start of the window, 0 at its end."""
        t, total = step, self.total_steps
        return (2 * total - 2 * t) / (2 * total - t)

    def learning_rate(self, step: int, scheduled_lr: float, marked_norm: float) -> float:
        """lr = max(eta_t, beta_t), beta_t = p(t) (2 sigmoid(||theta_marked||_1) - 1) eta_0.

        Computed afresh each step from the scheduled lr; unlike the reference it does not write
        back into the optimizer, so it cannot ratchet upward across steps.
        """
        sigmoid = 1.0 / (1.0 + math.exp(-marked_norm))
        beta = self.budget_factor(step) * (2.0 * sigmoid - 1.0) * self.base_lr
        return max(scheduled_lr, beta)


def marked_sets(weights: dict[str, torch.Tensor], masks: Masks, fraction: float) -> dict[str, torch.Tensor]:
    """Per layer, flat indices of the active weights the next adjustment will prune."""
    counts = adjustment_counts(masks, fraction)
    return {name: lowest_active(weights[name], masks[name], counts[name]) for name in masks}


def marked_values(weights: dict[str, torch.Tensor], marked: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The marked weights of each layer (differentiable gathers)."""
    return [weights[name].flatten()[idx] for name, idx in marked.items() if idx.numel()]


def marked_norm(values: list[torch.Tensor]) -> float:
    """||theta_marked||_1 over all layers: the input of the budget-aware learning rate."""
    return float(sum(v.detach().abs().sum() for v in values))


def penalty(values: list[torch.Tensor], coefficient: float, form: str = "squared") -> torch.Tensor:
    """lambda * sum_l ||w_marked,l||^2 ("squared") or lambda * sum_l ||w_marked,l||_2 ("norm")."""
    if form not in ("squared", "norm"):
        raise ValueError(f"penalty must be 'squared' or 'norm', got {form!r}")
    if not values:
        return torch.zeros(())
    if form == "squared":
        return coefficient * sum(v.pow(2).sum() for v in values)
    return coefficient * sum(v.norm() for v in values)
