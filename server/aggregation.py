"""Aggregation of sparse client updates and of the growth signal (FedMef Alg. 1, lines 9-14).

All clients of a round share the server's masks, so the packed value arrays line up and the
weighted average is taken value by value: the aggregate stays exactly as sparse as the mask.

``RunningAggregate`` takes the updates one at a time as replies arrive and keeps only running
sums: per ``v/``/``d/`` key the sample-weighted sum of values (float64), per layer the
sample-weighted sum of reported |gradient| at each position (float32: it is layer-sized, and only
ranks candidates), and the total sample count. Memory
is therefore bounded by the model, not by the number of clients; an update found to be an
outlier once the round's statistics are known is taken out again with ``remove``. ``take_in``
is a round's intake: validate each reply, add it, then take back the updates whose norm is far
above the round's (``validation.norm_scores``) by reading their replies again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import Message

from fedmef import protocol as p
from fedmef.protocol import Arrays

from .validation import ExpectedUpdate, RejectedUpdate, check_update, norm_scores, read_reply


class RunningAggregate:
    def __init__(self, numels: dict[str, int]):
        self.numels = numels  # prunable layer -> weights (the growth sums' length)
        self.sums: dict[str, np.ndarray] = {}
        self.growth: dict[str, np.ndarray] = {}
        self.total = 0
        self.clients = 0

    def add(self, arrays: Arrays, count: int, sign: int = 1) -> None:
        """Add (``sign`` -1: take back) one update that trained on ``count`` samples."""
        if count <= 0:
            raise ValueError(f"a client update reports {count} training samples")
        keys = sorted(key for key in arrays if key.startswith((p.VALUES, p.DENSE)))
        if self.sums and keys != sorted(self.sums):
            raise ValueError(f"client updates disagree on their keys: {sorted(set(keys) ^ set(self.sums))}")
        for key in keys:
            value = arrays[key]
            total = self.sums.setdefault(key, np.zeros(value.shape, np.float64))
            if total.shape != value.shape:
                raise ValueError(f"clients disagree on the shape of {key}: {total.shape} and {value.shape}")
            total += (sign * count) * value.astype(np.float64)
        for name, numel in self.numels.items():
            if p.GROWTH_INDICES + name in arrays:
                # float32: a layer-sized sum per layer is the largest thing the server holds per round
                scores = self.growth.setdefault(name, np.zeros(numel, np.float32))
                magnitudes = arrays[p.GROWTH_MAGNITUDES + name].astype(np.float32)
                np.add.at(scores, arrays[p.GROWTH_INDICES + name].astype(np.int64), (sign * count) * magnitudes)
        self.total += sign * count
        self.clients += sign

    def remove(self, arrays: Arrays, count: int) -> None:
        self.add(arrays, count, sign=-1)

    def average(self) -> Arrays:
        """Sample-weighted mean of every ``v/`` and ``d/`` array added, float32."""
        if not self.clients:
            raise ValueError("no client updates to aggregate")
        return {key: (total / self.total).astype(np.float32) for key, total in self.sums.items()}

    def growth_scores(self) -> dict[str, torch.Tensor]:
        """Per layer, the sample-weighted mean of the clients' reported |gradient| at each position
        (a client that reported none counts with zeros)."""
        total = self.total or 1
        return {name: torch.from_numpy(np.divide(self.growth[name], total, dtype=np.float32)) if name in self.growth
                else torch.zeros(numel, dtype=torch.float32) for name, numel in self.numels.items()}  # fmt: skip


def weighted_average(updates: list[tuple[Arrays, int]]) -> Arrays:
    """Sample-weighted mean of the ``v/`` and ``d/`` arrays of each update."""
    aggregate = RunningAggregate({})
    for arrays, count in updates:
        aggregate.add(arrays, count)
    return aggregate.average()


def growth_scores(updates: list[tuple[Arrays, int]], numels: dict[str, int]) -> dict[str, torch.Tensor]:
    """Per layer, sample-weighted sum of the clients' reported |gradient| at each position."""
    aggregate = RunningAggregate(numels)
    for arrays, count in updates:
        aggregate.add(arrays, count)
    return aggregate.growth_scores()


@dataclass
class Intake:
    """What a round kept of its replies."""

    aggregate: RunningAggregate
    losses: list[float] = field(default_factory=list)
    bytes_up: int = 0
    max_norm_mads: float = float("nan")  # the largest norm score among structurally valid replies
    updates: list[tuple[Arrays, int]] = field(default_factory=list)  # only with keep_updates (FedDST's vote)


def take_in(replies: Sequence[tuple[int, Message]], round_num: int, expected: ExpectedUpdate, *,
            max_num_examples: int, reject_norm_mads: float, reject: Callable[[int, str], None],
            keep_updates: bool = False) -> Intake:
    """Validate and aggregate ``(node, reply)`` pairs one at a time; ``reject(node, reason)`` is
    called for each update left out. Only positions into ``replies`` are kept (an outlier's reply is
    read again to take it out), so at most one decoded update is alive at any time (and, with
    ``keep_updates``, the accepted ones: FedDST votes over the clients' own masks)."""
    intake, accepted = Intake(RunningAggregate(expected.numels)), []
    for index, (node, reply) in enumerate(replies):
        try:
            arrays, metrics = read_reply(reply, round_num)
            norm = check_update(expected, arrays, metrics, max_num_examples)
        except RejectedUpdate as reason:
            reject(node, str(reason))
            continue
        count = int(metrics[p.NUM_EXAMPLES])
        intake.aggregate.add(arrays, count)
        accepted.append((index, norm, count, float(metrics[p.TRAIN_LOSS]), p.payload_bytes(arrays)))
        del arrays, reply  # before the next reply is decoded
    scores = norm_scores([norm for _, norm, *_ in accepted])
    intake.max_norm_mads = max(scores, default=float("nan"))
    for (index, norm, count, loss, size), score in zip(accepted, scores, strict=True):
        node, reply = replies[index]
        if reject_norm_mads and score > reject_norm_mads:
            intake.aggregate.remove(read_reply(reply, round_num)[0], count)
            reject(node, f"update norm {norm:.4g} is {score:.1f} MADs above the median "
                         f"(reject-norm-mads {reject_norm_mads})")  # fmt: skip
            continue
        intake.losses.append(loss)
        intake.bytes_up += size
        if keep_updates:
            intake.updates.append((read_reply(reply, round_num)[0], count))
    return intake
