"""The server's round schedule: which rounds extrude, which adjust, and with what coefficients.

Clients never recompute any of this; it travels in each round's message (FedMef Alg. 1).
Round ``t`` (1-based) is an adjustment round when ``t % adjust_interval == 0`` and
``t <= T_end``; the ``extrusion_rounds`` rounds ending with an adjustment round (inclusive)
extrude the weights that adjustment will prune, with prune fraction ``f_decay(A)``. Marking
(``local_plan``) and cutting (``adjust``) rank by the same effective weights, so with nothing
trained in between the marked set is exactly the set the cut prunes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fedmef.config import RunConfig
from fedmef.extrusion import marked_sets
from fedmef.models import effective_weights, prunable_layers, set_masks, standardised_layers
from fedmef.sparsity import adjustment_counts, prune_and_grow, prune_fraction
from fedmef.training import LocalPlan


@dataclass(frozen=True)
class RoundPhase:
    round: int
    lr: float
    adjust: bool  # prune/grow after this round's aggregation
    extrude: bool  # clients add the BaE penalty on the marked set
    fraction: float  # prune fraction of the upcoming adjustment (0 when none)
    window_offset: int  # rounds of the extrusion window before this one


def next_adjustment(config: RunConfig, round_num: int) -> int | None:
    interval = config.adjust_interval
    upcoming = -(-round_num // interval) * interval
    return upcoming if upcoming <= min(config.adjust_end_round, config.num_rounds) else None


def round_phase(config: RunConfig, round_num: int) -> RoundPhase:
    if not 1 <= round_num <= config.num_rounds:
        raise ValueError(f"round {round_num} outside 1..{config.num_rounds}")
    progress = (round_num - 1) / max(1, config.num_rounds - 1)
    lr = config.lr * (config.lr_final / config.lr) ** progress
    upcoming = next_adjustment(config, round_num) if config.flags.sparse else None
    if upcoming is None:
        return RoundPhase(round_num, lr, False, False, 0.0, 0)
    fraction = prune_fraction(upcoming, config.adjust_alpha, config.adjust_end_round)
    if fraction * config.density < 1e-12:  # f_decay reaches 0 at T_end: nothing to move
        return RoundPhase(round_num, lr, False, False, 0.0, 0)
    ahead = upcoming - round_num
    extrude = config.flags.extrusion and ahead < config.extrusion_rounds and fraction > 0
    return RoundPhase(
        round=round_num, lr=lr, adjust=ahead == 0, extrude=extrude,
        fraction=fraction if (extrude or ahead == 0) else 0.0,
        window_offset=config.extrusion_rounds - 1 - ahead if extrude else 0,
    )  # fmt: skip


def local_plan(config: RunConfig, phase: RoundPhase, model: nn.Module) -> LocalPlan:
    """The round's instructions to clients: marked sets from the current global ``model``, ranked
    by effective weight as the cut will rank them; on an adjustment round the growth candidates to
    report, or for FedDST how many weights to prune and regrow locally."""
    masks = {name: layer.mask.bool() for name, layer in prunable_layers(model).items()}
    counts = adjustment_counts(masks, phase.fraction) if phase.adjust else {}
    local = config.flags.local_dst
    return LocalPlan(
        epochs=config.local_epochs, batch_size=config.batch_size, lr=phase.lr, weight_decay=config.weight_decay,
        marked=marked_sets(effective_weights(model), masks, phase.fraction) if phase.extrude else {},
        lambda_max=config.bae_lambda_max, lambda_ramp=config.bae_ramp, penalty=config.bae_penalty,
        window_offset_rounds=phase.window_offset, window_rounds=config.extrusion_rounds, base_lr=config.lr,
        growth_counts={} if local else counts, readjust_counts=counts if local else {},
        seed=config.seed * 100_003 + phase.round,
    )  # fmt: skip


def adjust(model: nn.Module, growth_scores: dict[str, torch.Tensor], fraction: float) -> None:
    """The server's prune/grow of the global ``model``, in place: per layer prune the f_decay * active
    weights of smallest effective magnitude, grow as many by the aggregated ``growth_scores``."""
    layers = prunable_layers(model)
    weights = {name: layer.weight.detach() for name, layer in layers.items()}
    masks = {name: layer.mask.bool() for name, layer in layers.items()}
    counts = adjustment_counts(masks, fraction)
    new_weights, new_masks = prune_and_grow(
        weights, effective_weights(model), masks, growth_scores, counts, standardised_layers(model)
    )
    set_masks(model, new_masks)
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(new_weights[name])
