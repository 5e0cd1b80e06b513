"""Sparse masks for federated dynamic pruning (FedMef §3.1, following FedDST / RigL).

Holds the Erdős–Rényi-Kernel (ERK) density allocation, mask initialisation, the cosine
prune-fraction schedule f_decay, and the prune/grow adjustment, which ranks weights by their
effective value (what the layer multiplies by) and starts grown weights at effective value 0.
Every function works on plain dicts ``{layer name: tensor}`` so the server can use it on
aggregated arrays without a model instance. The number of active weights per layer never
changes: each adjustment prunes and grows the same count.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch

Masks = dict[str, torch.Tensor]


def erk_densities(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Per-layer densities whose weighted mean is ``density`` (ERK, Evci et al. 2020).

    A layer's density is proportional to sum(shape)/prod(shape); layers whose density would
    exceed 1 are made dense and the rest rescaled, repeatedly, as in RigL's reference code.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        free = sum(raw[n] * sizes[n] for n in sizes if n not in dense)
        epsilon = budget / free if free > 0 else 0.0
        overfull = {n for n in sizes if n not in dense and epsilon * raw[n] > 1.0}
        if not overfull:
            break
        dense |= overfull
    return {n: 1.0 if n in dense else epsilon * raw[n] for n in sizes}


def random_masks(shapes: dict[str, tuple[int, ...]], density: float, generator: torch.Generator) -> Masks:
    """ERK random masks: each layer gets exactly round(density_l * numel) active weights."""
    masks = {}
    for name, layer_density in erk_densities(shapes, density).items():
        numel = math.prod(shapes[name])
        active = max(1, round(layer_density * numel))
        order = torch.randperm(numel, generator=generator)
        flat = torch.zeros(numel, dtype=torch.bool)
        flat[order[:active]] = True
        masks[name] = flat.view(shapes[name])
    return masks


def prune_fraction(round_num: int, alpha: float, end_round: int) -> float:
    """f_decay(t) = alpha/2 * (1 + cos(pi t / T_end)); zero after T_end."""
    if round_num > end_round:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * round_num / end_round))


def adjustment_counts(masks: Masks, fraction: float) -> dict[str, int]:
    """How many weights each layer prunes (and grows) at this adjustment."""
    counts = {}
    for name, mask in masks.items():
        active = int(mask.sum())
        inactive = mask.numel() - active
        counts[name] = min(int(fraction * active + 1e-9), inactive)  # 0.29 * 100 must give 29
    return counts


def lowest_active(weight: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` active weights of smallest magnitude.

    Selection is among active weights only (the reference selected over the whole tensor,
    which with 90 % zeros picks only already-pruned weights).
    """
    if count == 0:
        return torch.empty(0, dtype=torch.long)
    scores = weight.detach().abs().flatten().masked_fill(~mask.flatten(), math.inf)
    return torch.sort(scores, stable=True).indices[:count]  # ties: the smaller flat index first


def top_inactive(scores: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Flat indices of the ``count`` inactive positions with the largest score."""
    if count == 0:
        return torch.empty(0, dtype=torch.long)
    masked = scores.detach().flatten().masked_fill(mask.flatten(), -math.inf)
    return torch.sort(masked, descending=True, stable=True).indices[:count]  # ties: the smaller index first


def prune_and_grow(
    weights: dict[str, torch.Tensor],
    effective: dict[str, torch.Tensor],
    masks: Masks,
    growth_scores: dict[str, torch.Tensor],
    counts: dict[str, int],
    standardised: Collection[str] = (),
) -> tuple[dict[str, torch.Tensor], Masks]:
    """One adjustment: per layer prune ``counts`` active weights of smallest effective magnitude,
    grow as many inactive ones. Returns new raw weights and masks.

    ``effective`` holds what each layer multiplies by (``activation_pruning.effective_weight``):
    for a standardised (NSConv) layer a raw weight of 0 is not an unused weight. Growth picks the
    largest aggregated gradient magnitude among weights inactive before this adjustment. A grown
    weight starts at effective value 0: raw 0 in a plain layer; in a ``standardised`` layer the
    mean of its output channel's kept raw weights, which leaves that channel's mean and sum of
    squared deviations (its statistics) unchanged.
    """
    new_weights, new_masks = {}, {}
    for name, mask in masks.items():
        flat_mask = mask.flatten().clone()
        grow = top_inactive(growth_scores[name], mask, counts[name])
        prune = lowest_active(effective[name], mask, counts[name])
        flat_mask[prune] = False
        kept = flat_mask.view_as(mask)
        weight = weights[name].detach() * kept
        start = channel_means(weight, kept) if name in standardised else torch.zeros_like(weight)
        flat_mask[grow] = True
        flat_weight = weight.flatten().clone()
        flat_weight[grow] = start.flatten()[grow]
        new_masks[name] = flat_mask.view_as(mask)
        new_weights[name] = flat_weight.view_as(weights[name])
    return new_weights, new_masks


def channel_means(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per output unit, the mean of the active raw weights (0 where none is active), as ``weight``'s shape.

    Standardisation subtracts this mean, so a weight set to it has effective value 0."""
    dims = tuple(range(1, weight.dim()))
    active = mask.sum(dim=dims, keepdim=True)
    mean = (weight * mask).sum(dim=dims, keepdim=True) / active.clamp(min=1)
    return mean.expand_as(weight)


def sparse_init_scale(mask: torch.Tensor) -> torch.Tensor:
    """Per-output-unit factor sqrt(dense fan-in / active fan-in) for a masked weight.

    Standard initialisers scale by the dense fan-in; at density 0.1 each layer's output variance
    then shrinks ~10x and, without BatchNorm, a few layers deep the signal vanishes. Rescaling by
    the active fan-in (Evci et al. 2022, "Gradient flow in sparse neural networks") restores it.
    """
    dims = tuple(range(1, mask.dim()))
    dense = mask[0].numel()
    active = mask.sum(dim=dims, keepdim=True).clamp(min=1)
    return torch.sqrt(dense / active)


def apply_masks(weights: dict[str, torch.Tensor], masks: Masks) -> None:
    """Zero pruned weights in place (called after every optimizer step)."""
    with torch.no_grad():
        for name, mask in masks.items():
            weights[name].mul_(mask)


def layer_densities(masks: Masks) -> dict[str, float]:
    return {name: float(mask.float().mean()) for name, mask in masks.items()}
