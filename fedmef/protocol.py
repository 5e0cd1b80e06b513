"""The client contract in code (``docs/protocol.md``): keys, mask bits, batch order, state packing.

Every record name and key the server and clients exchange is defined here, and nowhere else on
the Python side. Everything is numpy: a client that runs exported graphs imports no torch.

* ``mask_bits`` / ``active_positions`` — the ``m/<layer>`` bit packing (§2);
* ``batches`` — the language-neutral batch order: SplitMix64 + Fisher–Yates (§4);
* ``pack`` / ``unpack`` — wire arrays to a graph's feeds by the manifest's input roles and back (§6).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from fedmef.manifest import TensorSpec


class Described(Protocol):
    """What packing needs of a manifest (the exporter's ``Layout`` has it too)."""

    def inputs(self, graph: str) -> list[TensorSpec]: ...


Arrays = dict[str, np.ndarray]

# message records (§1)
STATE, PLAN, ARTIFACTS, UPDATE, METRICS = "state", "plan", "artifacts", "update", "metrics"
TRAIN, EVALUATE = "train", "evaluate"
CLIENT_ERROR = 1
# wire array prefixes (§2)
VALUES, MASK, DENSE, MARKED, GROWTH_INDICES, GROWTH_MAGNITUDES, FILE = "v/", "m/", "d/", "x/", "gi/", "gv/", "file/"
# plan keys (§3)
ROUND, EPOCHS, BATCH_SIZE, SEED, LR, BASE_LR = "round", "epochs", "batch-size", "seed", "lr", "base-lr"
EXTRUDE, LAMBDA_MAX, LAMBDA_RAMP = "extrude", "lambda-max", "lambda-ramp"
WINDOW_OFFSET, WINDOW_ROUNDS, WEIGHT_DECAY, PENALTY = "window-offset", "window-rounds", "weight-decay", "penalty"
GROW, MANIFEST = "grow/", "manifest"
READJUST = "readjust/"  # FedDST on the eager backend only (§3)
# metrics (§1)
NUM_EXAMPLES, TRAIN_LOSS, SECONDS, LOSS, ACCURACY = "num-examples", "train-loss", "seconds", "loss", "accuracy"
# graph tensor names the client feeds itself (§6)
X, Y, STEP, STEPS = "x", "y", "step", "steps"
NEXT = "next/"
GROW_INDICES, GROW_MAGNITUDES = "grow-indices/", "grow-magnitudes/"


def with_prefix(prefix: str, arrays: dict) -> dict:
    """The entries of ``arrays`` under ``prefix``, keyed by the rest of their key."""
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def payload_bytes(arrays: Arrays) -> int:
    return int(sum(np.asarray(a).nbytes for a in arrays.values()))


# --- mask bits (§2) ---------------------------------------------------------------------------


def mask_bits(mask: np.ndarray) -> np.ndarray:
    """The flat boolean ``mask`` packed 8 per byte, first element in the most significant bit."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1))


def active_positions(bits: np.ndarray, numel: int) -> np.ndarray:
    """Ascending int32 flat indices of the set bits of a packed mask over ``numel`` elements."""
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    if bits.size != (numel + 7) // 8:
        raise ValueError(f"packed mask has {bits.size} bytes, {numel} weights need {(numel + 7) // 8}")
    return np.flatnonzero(np.unpackbits(bits, count=numel)).astype(np.int32)


# --- batch order (§4) -------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


class SplitMix64:
    """Steele, Lea and Flood's SplitMix64: 64-bit state, one multiply-xorshift output per call."""

    def __init__(self, seed: int):
        if not 0 <= seed < 1 << 63:
            raise ValueError(f"seed must be in [0, 2^63), got {seed}")
        self.state = seed

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)


def batches(num_samples: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Fixed-size batches: a Fisher–Yates permutation per epoch, the trailing partial batch dropped."""
    if num_samples <= 0:
        raise ValueError("client has no training samples")
    if batch_size <= 0 or epochs <= 0:
        raise ValueError(f"batch size and epochs must be positive, got {batch_size} and {epochs}")
    rng = SplitMix64(seed)
    out = []
    for _ in range(epochs):
        order = np.arange(num_samples)
        for i in range(num_samples - 1, 0, -1):
            j = rng.next() % (i + 1)
            order[i], order[j] = order[j], order[i]
        if num_samples < batch_size:
            order = np.resize(order, batch_size)  # repeats the permutation cyclically
        out += [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    return out


def growth_batch(num_samples: int, batch_size: int, seed: int) -> np.ndarray:
    return batches(num_samples, batch_size, 1, seed + 1)[0]


# --- state packing (§6) -----------------------------------------------------------------------


STATE_ROLES = ("values", "weight", "positions", "mask", "marked", "param")


def pack_state(manifest: Described, graph: str, wire: Arrays) -> Arrays:
    """The state inputs of ``graph`` (every role but data, plan and counter) from the wire arrays."""
    return {spec.name: _checked(spec, _state_value(spec, wire)) for spec in manifest.inputs(graph)
            if spec.role in STATE_ROLES}  # fmt: skip


def pack(manifest: Described, graph: str, wire: Arrays, extra: dict) -> Arrays:
    """All feeds of ``graph``: the state from the wire arrays, the rest (x, y, plan scalars, step
    counters) from ``extra``; every value cast and shape-checked against the manifest."""
    feeds = pack_state(manifest, graph, wire)
    for spec in manifest.inputs(graph):
        if spec.role not in STATE_ROLES:
            if spec.name not in extra:
                raise KeyError(f"no value for graph input {spec.name!r} (role {spec.role})")
            feeds[spec.name] = _checked(spec, extra[spec.name])
    return {spec.name: feeds[spec.name] for spec in manifest.inputs(graph)}


def _checked(spec: TensorSpec, value) -> np.ndarray:
    array = np.require(np.asarray(value, dtype=spec.dtype), requirements="C")
    if tuple(array.shape) != tuple(spec.shape):
        raise ValueError(f"input {spec.name!r}: shape {list(array.shape)}, the graph expects {list(spec.shape)}")
    return array


def _state_value(spec: TensorSpec, wire: Arrays) -> np.ndarray:
    if spec.role == "param":
        return _wire(wire, DENSE + spec.name)
    numel = math.prod(spec.dense_shape)
    positions = active_positions(_wire(wire, MASK + spec.layer), numel)
    if spec.role == "positions":
        return positions
    if spec.role == "mask":
        return _scatter(positions, np.ones(len(positions), np.float32), spec.dense_shape)
    if spec.role == "values":
        return _wire(wire, VALUES + spec.layer)
    if spec.role == "weight":
        return _scatter(positions, _wire(wire, VALUES + spec.layer), spec.dense_shape)
    if spec.role == "marked":
        marked = np.zeros(numel, np.float32)
        indices = np.asarray(wire.get(MARKED + spec.layer, np.empty(0)), dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= numel):
            raise ValueError(f"marked indices of {spec.layer} outside 0..{numel - 1}")
        marked[indices] = 1.0
        return marked[positions] if tuple(spec.shape) != tuple(spec.dense_shape) else marked.reshape(spec.shape)
    raise ValueError(f"input {spec.name!r} has role {spec.role!r}, which is not part of the state")


def _wire(wire: Arrays, key: str) -> np.ndarray:
    if key not in wire:
        raise KeyError(f"the instruction's state has no {key!r}")
    return np.asarray(wire[key])


def _scatter(positions: np.ndarray, values: np.ndarray, shape) -> np.ndarray:
    if len(values) != len(positions):
        raise ValueError(f"{len(values)} values for {len(positions)} active positions")
    dense = np.zeros(math.prod(shape), np.float32)
    dense[positions] = values
    return dense.reshape(shape)


def unpack(manifest: Described, graph: str, feeds: Arrays) -> Arrays:
    """The update's ``v/`` and ``d/`` arrays from the trainable inputs of ``feeds``."""
    update, specs = {}, manifest.inputs(graph)
    masks = {s.layer: feeds[s.name].reshape(-1) != 0 for s in specs if s.role == "mask"}
    for spec in specs:
        if spec.role not in ("values", "weight", "param"):
            continue
        value = np.asarray(feeds[spec.name], dtype=np.float32)
        if spec.role == "values":
            update[VALUES + spec.layer] = value
        elif spec.role == "weight":  # masked layout: the active entries; dense layout: all of them
            flat = value.reshape(-1)
            update[VALUES + spec.layer] = flat[masks[spec.layer]] if spec.layer in masks else flat
        elif spec.role == "param":
            update[DENSE + spec.name] = value
    return update

