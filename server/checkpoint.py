"""The server's checkpoint: everything a killed run needs to go on from its last completed round.

After each round the ServerApp writes ``checkpoint.pt`` into the run directory, atomically (a
temporary file renamed over the old one, so a kill mid-write leaves the previous checkpoint). It
holds the model's ``state_dict`` (weights and the mask buffers of the prunable layers), the next
round to run, the ``metrics.csv`` rows logged so far and the server's RNG states. Nothing else
carries over between rounds: the schedule and the marked sets are functions of the round and the
model (``schedule.py``), and sampling is seeded per round. What the exporter shipped to which
node is not kept: after a restart every node is sent the artifact files again.

The file loads with ``torch.load(weights_only=True)``: tensors and plain Python values only.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

FILENAME = "checkpoint.pt"
VERSION = 1


@dataclass
class Checkpoint:
    next_round: int
    model_state: dict[str, torch.Tensor]
    rows: list[dict]
    rng: dict

    @classmethod
    def of(cls, next_round: int, model: nn.Module, rows: list[dict]) -> Checkpoint:
        state = {name: compact(name, tensor.detach()) for name, tensor in model.state_dict().items()}
        return cls(next_round, state, [plain_row(row) for row in rows], rng_state())

    def restore(self, model: nn.Module) -> None:
        """Load the weights and masks into ``model`` and put the RNGs back where they were."""
        model.load_state_dict(self.model_state)
        set_rng_state(self.rng)


def compact(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A 0/1 mask buffer as bool (a quarter of float32's size; ``load_state_dict`` casts it back)."""
    if name.endswith(".mask") and torch.equal(tensor, tensor.bool().to(tensor.dtype)):
        return tensor.bool()
    return tensor.clone()


def save(directory: Path, checkpoint: Checkpoint) -> Path:
    path = directory / FILENAME
    temporary = path.with_name(f".{FILENAME}.tmp")
    content = {"version": VERSION, "next_round": checkpoint.next_round, "model": checkpoint.model_state,
               "rows": checkpoint.rows, "rng": checkpoint.rng}  # fmt: skip
    with open(temporary, "wb") as handle:
        torch.save(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load(directory: Path) -> Checkpoint | None:
    """The run directory's checkpoint, or None when no round completed yet."""
    path = directory / FILENAME
    if not path.is_file():
        return None
    content = torch.load(path, weights_only=True)
    if content.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {content.get('version')!r}, this server reads {VERSION}")
    return Checkpoint(int(content["next_round"]), content["model"], list(content["rows"]), content["rng"])


def plain_row(row: dict) -> dict:
    """numpy scalars as Python numbers (what ``weights_only`` loading accepts)."""
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()}


def rng_state() -> dict:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached]}  # fmt: skip


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
