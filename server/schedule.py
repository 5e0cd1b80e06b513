"""The server's round schedule: which rounds extrude, which adjust, and with what coefficients.

Clients never recompute any of this; it travels in each round's message (FedMef Alg. 1).
Round ``t`` (1-based) is an adjustment round when ``t % adjust_interval == 0`` and
``t <= T_end``; the ``extrusion_rounds`` rounds ending with an adjustment round (inclusive)
extrude the weights that adjustment will prune, with prune fraction ``f_decay(A)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedmef.config import RunConfig
from fedmef.sparsity import prune_fraction


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
