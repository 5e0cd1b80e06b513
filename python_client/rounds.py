"""The contract's client round (``docs/protocol.md`` §5), from the manifest alone: numpy, no torch.

``GraphBackend`` feeds the exported graphs from the wire arrays by the manifest's input roles
(``protocol.pack``), loops the step graph over the documented batch order with the step counters
and the plan's scalars, unpacks the trained state into the sparse update, and truncates the growth
graph's candidates to the plan's counts. No schedule formula, no top-k, no model here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedmef import protocol as p
from fedmef.manifest import Manifest

from .runtimes import Run


class GraphBackend:
    def __init__(self, manifest: Manifest, graphs: Mapping[str, Run]):
        self.manifest, self.graphs = manifest, graphs

    def train(self, wire: p.Arrays, plan: dict, x: np.ndarray, y: np.ndarray) -> tuple[p.Arrays, float]:
        """(update, mean loss) of the plan's local steps on (x, y)."""
        manifest = self.manifest
        if int(plan[p.BATCH_SIZE]) != manifest.batch_size:
            raise ValueError(f"plan batch size {plan[p.BATCH_SIZE]}, the graphs take {manifest.batch_size}")
        if p.with_prefix(p.READJUST, plan):
            raise ValueError("the plan asks for FedDST's local prune/regrow, which runs on the torch backend only")
        order = p.batches(len(x), manifest.batch_size, int(plan[p.EPOCHS]), int(plan[p.SEED]))
        scalars = {spec.name: plan[spec.name] for spec in manifest.inputs("step") if spec.role == "plan"}
        state = p.pack(manifest, "step", wire, {p.X: x[order[0]], p.Y: y[order[0]], p.STEP: 0, p.STEPS: 1} | scalars)
        outputs = manifest.graphs["step"].outputs
        losses = []
        for step, batch in enumerate(order):
            feeds = state | {p.X: x[batch], p.Y: y[batch], p.STEP: np.float32(step), p.STEPS: np.float32(len(order))}
            results = self.graphs["step"](_cast(manifest, "step", feeds))
            for spec, value in zip(outputs, results, strict=True):
                if spec.role == "update":
                    state[spec.of] = value
                elif spec.role == "loss":
                    losses.append(float(value))
        update = p.unpack(manifest, "step", state)
        counts = {layer: int(c) for layer, c in p.with_prefix(p.GROW, plan).items()}
        if counts:
            update |= self.growth(state, counts, x, y, int(plan[p.SEED]))
        return update, float(np.mean(losses))

    def growth(self, state: p.Arrays, counts: dict[str, int], x, y, seed: int) -> p.Arrays:
        """``gi/``/``gv/`` arrays: the growth graph's candidates on the growth batch, cut to ``counts``."""
        if "growth" not in self.manifest.graphs:
            raise ValueError("the plan asks for growth candidates, but the manifest has no growth graph")
        batch = p.growth_batch(len(x), self.manifest.batch_size, seed)
        feeds = state | {p.X: x[batch], p.Y: y[batch]}  # the step's inputs include every growth input
        results = dict(zip([o.name for o in self.manifest.graphs["growth"].outputs],
                           self.graphs["growth"](_cast(self.manifest, "growth", feeds)), strict=True))  # fmt: skip
        update = {}
        for layer, count in counts.items():
            indices = results.get(p.GROW_INDICES + layer, np.empty(0, np.int32))
            magnitudes = results.get(p.GROW_MAGNITUDES + layer, np.empty(0, np.float32))
            if not 0 <= count <= len(indices):
                raise ValueError(f"plan asks for {count} growth candidates of {layer}, the graph gives {len(indices)}")
            update[p.GROWTH_INDICES + layer] = np.asarray(indices[:count], dtype=np.int32)
            update[p.GROWTH_MAGNITUDES + layer] = np.asarray(magnitudes[:count], dtype=np.float32)
        return update

    def evaluate(self, wire: p.Arrays, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) on (x, y) in order; the last batch is padded with its first sample."""
        size = self.manifest.batch_size
        state = p.pack(self.manifest, "evaluate", wire, {p.X: x[:1].repeat(size, 0), p.Y: y[:1].repeat(size)})
        losses, hits = [], []
        for start in range(0, len(x), size):
            index = np.arange(start, min(start + size, len(x)))
            real = len(index)
            index = np.concatenate([index, np.full(size - real, start)])
            loss, correct = self.graphs["evaluate"](_cast(self.manifest, "evaluate", state | {p.X: x[index],
                                                                                             p.Y: y[index]}))
            losses.append(loss[:real])
            hits.append(correct[:real])
        return float(np.concatenate(losses).astype(np.float64).mean()), float(np.concatenate(hits).sum()) / len(x)


def _cast(manifest: Manifest, graph: str, feeds: dict) -> dict[str, np.ndarray]:
    """Feeds with each value in its manifest dtype (scalars as 0-d arrays)."""
    return {spec.name: np.asarray(feeds[spec.name], dtype=spec.dtype) for spec in manifest.inputs(graph)}
