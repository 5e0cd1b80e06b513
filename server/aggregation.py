"""Aggregation of sparse client updates and of the growth signal (FedMef Alg. 1, lines 9-14).

All clients of a round share the server's masks, so the packed value arrays line up and the
weighted average is taken value by value: the aggregate stays exactly as sparse as the mask.

``RunningAggregate`` takes the updates one at a time as replies arrive and keeps only running
sums (float64): per ``v/``/``d/`` key the sample-weighted sum of values, per layer the
sample-weighted sum of reported |gradient| at each position, and the total sample count. Memory
is therefore bounded by the model, not by the number of clients; an update found to be an
outlier once the round's statistics are known is taken out again with ``remove``.
"""

from __future__ import annotations

import numpy as np
import torch

from fedmef import protocol as p
from fedmef.protocol import Arrays


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
                scores = self.growth.setdefault(name, np.zeros(numel, np.float64))
                magnitudes = arrays[p.GROWTH_MAGNITUDES + name].astype(np.float64)
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
        return {name: torch.from_numpy(self.growth[name] / total) if name in self.growth
                else torch.zeros(numel, dtype=torch.float64) for name, numel in self.numels.items()}  # fmt: skip


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
