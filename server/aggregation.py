"""Aggregation of sparse client updates and of the growth signal (FedMef Alg. 1, lines 9-14).

All clients of a round share the server's masks, so the packed value arrays line up and the
weighted average is taken value by value: the aggregate stays exactly as sparse as the mask.
"""

from __future__ import annotations

import numpy as np
import torch

from fedmef.protocol import Arrays


def weighted_average(updates: list[tuple[Arrays, int]]) -> Arrays:
    """Sample-weighted mean of the ``v/`` and ``d/`` arrays of each update."""
    if not updates:
        raise ValueError("no client updates to aggregate")
    total = sum(count for _, count in updates)
    if total <= 0:
        raise ValueError("client updates report no training samples")
    keys = [key for key in updates[0][0] if key.startswith(("v/", "d/"))]
    averaged = {}
    for key in keys:
        if any(key not in arrays for arrays, _ in updates):
            raise ValueError(f"a client update lacks {key}")
        shapes = {arrays[key].shape for arrays, _ in updates}
        if len(shapes) != 1:
            raise ValueError(f"clients disagree on the shape of {key}: {sorted(shapes)}")
        averaged[key] = sum(arrays[key].astype(np.float64) * count for arrays, count in updates) / total
        averaged[key] = averaged[key].astype(np.float32)
    return averaged


def growth_scores(updates: list[tuple[Arrays, int]], numels: dict[str, int]) -> dict[str, torch.Tensor]:
    """Per layer, sample-weighted sum of the clients' reported |gradient| at each position."""
    total = sum(count for _, count in updates) or 1
    scores = {name: torch.zeros(numel, dtype=torch.float64) for name, numel in numels.items()}
    for arrays, count in updates:
        for name in numels:
            if f"gi/{name}" not in arrays:
                continue
            indices = torch.from_numpy(arrays[f"gi/{name}"].astype(np.int64))
            values = torch.from_numpy(arrays[f"gv/{name}"].astype(np.float64))
            scores[name].index_add_(0, indices, values * count / total)
    return scores
