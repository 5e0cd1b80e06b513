"""FedDST as published (Bibikar et al., AAAI 2022, §3 and Alg. 1): the ``feddst`` baseline.

Unlike FedMef's server-side adjustment, the mask changes on the clients. On a readjustment round
each client, after its local epochs, prunes per layer the k active weights of smallest magnitude
and regrows k inactive ones with the largest gradient magnitude on one batch (RigL), grown
weights at 0, and uploads its weights with its new mask. The server averages each weight over the
clients whose mask holds it, weighted by their samples — the masks' sample-weighted vote, whose
support is the union of the client masks — and prunes the union back to each layer's target count
by magnitude.

Settings the paper leaves open, chosen here: the readjustment rounds and fractions are the run's
(``adjust-interval``, f_decay with ``adjust-alpha``, as for every sparse method); the gradient
batch is the contract's growth batch; a weight needs one vote (the reference's ``min_votes`` 0);
magnitude ties at the re-prune (regrown weights are all 0) keep the weight with more votes, and
among equal votes prune the smaller flat index first (as ``sparsity.lowest_active`` does).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedmef import protocol as p
from fedmef.models import effective_weights, prunable_layers, set_masks, standardised_layers
from fedmef.sparsity import prune_and_grow
from fedmef.training import growth_signal

#: prefix of the aggregate's per-layer vote shares (server-side only, never on the wire)
VOTES = "votes/"


def readjust(model: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: dict[str, int]) -> None:
    """Client side, in place: prune ``counts[layer]`` weights of smallest magnitude, regrow as many
    by the gradient on (x, y). Magnitude is the effective weight's (FedDST's plain layers: |w|)."""
    layers = prunable_layers(model)
    signal = growth_signal(model, x, y, counts)
    scores = {}
    for name, layer in layers.items():
        scores[name] = torch.zeros(layer.weight.numel())
        if name in signal:
            indices, magnitudes = signal[name]
            scores[name][indices] = magnitudes
    weights = {name: layer.weight.detach() for name, layer in layers.items()}
    masks = {name: layer.mask.bool() for name, layer in layers.items()}
    counts = {name: counts.get(name, 0) for name in layers}
    new_weights, new_masks = prune_and_grow(
        weights, effective_weights(model), masks, scores, counts, standardised_layers(model)
    )
    set_masks(model, new_masks)
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(new_weights[name])


def vote_average(updates: list[tuple[p.Arrays, int]], numels: dict[str, int]) -> p.Arrays:
    """Server side: the sample-weighted average of each weight over the clients whose mask holds it.

    Every update carries its client's ``m/<layer>`` mask and ``v/<layer>`` values at it. Returns
    ``m/`` (the union of the masks: one vote suffices), ``v/`` (averages at the union's positions),
    ``votes/<layer>`` (float64 per union position: the share of samples whose client kept it) and
    the ``d/`` averages.
    """
    total = sum(count for _, count in updates)
    if not updates or total <= 0:
        raise ValueError("no client updates with samples to aggregate")
    out: p.Arrays = {}
    for name, numel in numels.items():
        sums, votes = np.zeros(numel), np.zeros(numel)
        for arrays, count in updates:
            if p.MASK + name not in arrays:
                raise ValueError(f"a FedDST update lacks its mask m/{name}")
            positions = p.active_positions(arrays[p.MASK + name], numel)
            sums[positions] += count * np.asarray(arrays[p.VALUES + name], np.float64)
            votes[positions] += count
        union = votes > 0
        out[p.MASK + name] = p.mask_bits(union)
        out[p.VALUES + name] = (sums[union] / votes[union]).astype(np.float32)
        out[VOTES + name] = votes[union] / total
    for key in [k for k in updates[0][0] if k.startswith(p.DENSE)]:
        out[key] = (sum(a[key].astype(np.float64) * c for a, c in updates) / total).astype(np.float32)
    return out


def reprune(model: nn.Module, votes: dict[str, np.ndarray], targets: dict[str, int]) -> None:
    """Keep, per layer, the ``targets[layer]`` active weights of largest effective magnitude (ties:
    more votes; then the smaller flat index is pruned first); zero and unmask the rest, in place.

    ``votes[layer]`` is aligned with the layer's active positions in ascending order."""
    effective = effective_weights(model)
    masks = {}
    for name, layer in prunable_layers(model).items():
        active = torch.nonzero(layer.mask.flatten(), as_tuple=True)[0]
        magnitude = effective[name].flatten()[active].abs()
        by_vote = torch.sort(torch.from_numpy(np.asarray(votes[name])), stable=True).indices
        order = by_vote[torch.sort(magnitude[by_vote], stable=True).indices]  # lexicographic: magnitude, vote
        drop = active[order[: max(0, len(active) - targets[name])]]
        flat = layer.mask.flatten().clone()
        flat[drop] = 0
        masks[name] = flat.view_as(layer.mask)
    set_masks(model, masks)
