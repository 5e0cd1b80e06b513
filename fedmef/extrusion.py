"""Budget-aware extrusion, BaE (FedMef §3.2, Eq. 4–6).

Before an adjustment the server marks, per layer, the active weights it is about to prune (the
prune rule of ``sparsity.lowest_active`` on the effective weights). Clients add a penalty on the
marked *effective* weights (``activation_pruning.effective_weight``, gain held constant) so their
information is pushed into the surviving weights before the cut, and keep the learning rate high
enough for that to happen within the round budget. Everything here is a pure function of the
step number and tensors; the server decides which rounds extrude and sends the marked sets.

The penalty coefficient ramps linearly to its cap within the first ``ramp`` fraction of the
window, whatever the number of local steps: lambda(t) = lambda_max * min(1, (t + 1) / (ramp * T)).
(The older reference ramped by a fixed 1e-4 per step, which with a few steps per round never got
near its cap.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedmef.sparsity import Masks, adjustment_counts, lowest_active


@dataclass(frozen=True)
class ExtrusionSchedule:
    """Coefficients of one client's extrusion window of ``total_steps`` local steps.

    ``lambda_max``: the penalty coefficient's cap; ``ramp`` (rho, in (0, 1]): the fraction of the
    window after which the cap is reached. ``base_lr`` is eta_0. ``penalty`` is ``"squared"``
    (lambda * ||w||^2, the default of the older reference) or ``"norm"`` (lambda * ||w||_2,
    FedPruning's form).
    """

    total_steps: int
    base_lr: float
    lambda_max: float = 0.3
    ramp: float = 1.0
    penalty: str = "squared"

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise ValueError(f"extrusion window must have steps, got {self.total_steps}")
        if not 0.0 < self.ramp <= 1.0:
            raise ValueError(f"ramp must be in (0, 1], got {self.ramp}")
        if self.penalty not in ("squared", "norm"):
            raise ValueError(f"penalty must be 'squared' or 'norm', got {self.penalty!r}")

    def coefficient(self, step: int) -> float:
        """lambda at window step ``step`` (0-based): lambda_max * min(1, (step + 1) / (ramp * T))."""
        return self.lambda_max * min(1.0, (step + 1) / (self.ramp * self.total_steps))

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


def marked_sets(effective: dict[str, torch.Tensor], masks: Masks, fraction: float) -> dict[str, torch.Tensor]:
    """Per layer, flat indices of the active weights the next adjustment will prune: the
    ``f_decay * active`` smallest by effective magnitude (``effective``: what each layer multiplies by)."""
    counts = adjustment_counts(masks, fraction)
    return {name: lowest_active(effective[name], masks[name], counts[name]) for name in masks}


def marked_values(effective: dict[str, torch.Tensor], marked: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The marked effective weights of each layer (differentiable gathers)."""
    return [effective[name].flatten()[idx] for name, idx in marked.items() if idx.numel()]


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
