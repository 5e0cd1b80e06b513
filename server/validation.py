"""Validation of client train replies before aggregation (issue 13, reliability and security).

The instruction alone fixes the layout of an honest reply (``docs/protocol.md`` §1, §2, §5): one
``v/<layer>`` of the instruction's nnz (or, for FedDST's readjustment, of its own mask ``m/<layer>``,
which then keeps no more weights than were sent), every ``d/<param>`` in its shape, float32; on
adjustment rounds ``gi/``/``gv/`` of at most the requested count, at inactive positions inside the
layer; and the three train metrics. ``ExpectedUpdate.of`` derives that layout from what the server
sent, ``check_update`` raises ``RejectedUpdate`` with a one-line reason for any reply outside it
(and returns the update's norm otherwise), and ``norm_scores`` measures each norm in MADs above
the median of the round's structurally valid replies: above k (``reject-norm-mads``) it is
rejected, so one scaled or poisoned update cannot dominate the average. ``read_reply`` takes a
Flower reply apart: the round travels in Flower's ``group_id``, which the server sets to the round
and every client copies into its reply (the protocol's records carry no round of their own).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.common.constant import SType
from numpy.lib import format as npy

from fedmef import protocol as p

#: the train reply's metrics (§1) and the Python types their values must have
METRIC_TYPES = {p.NUM_EXAMPLES: (int,), p.TRAIN_LOSS: (int, float), p.SECONDS: (int, float)}
DTYPES = {p.VALUES: np.float32, p.DENSE: np.float32, p.MASK: np.uint8,
          p.GROWTH_INDICES: np.int32, p.GROWTH_MAGNITUDES: np.float32}  # fmt: skip
#: fewer structurally valid replies than this make no statistic: the norm check is skipped
MIN_REPLIES_FOR_NORMS = 3
#: the MAD used is at least this fraction of the median norm
MIN_MAD_FRACTION = 0.1


class RejectedUpdate(ValueError):
    """A client's train reply that does not fit the instruction the server sent it."""


@dataclass(frozen=True)
class ExpectedUpdate:
    """The layout of an honest reply to one round's train instruction."""

    numels: dict[str, int]  # prunable layer -> weights
    active: dict[str, np.ndarray]  # layer -> the instruction's active flat positions, ascending
    dense_shapes: dict[str, tuple[int, ...]]  # d/ key -> shape
    growth: dict[str, int]  # layer -> growth candidates asked for (adjustment rounds)
    masks_in_reply: bool  # FedDST readjustment: the reply carries the client's own m/ masks
    sent: p.Arrays  # the instruction's v/ and d/ arrays: the update norm is measured from them

    @classmethod
    def of(cls, state: p.Arrays, plan: dict, numels: dict[str, int]) -> ExpectedUpdate:
        active = {name: p.active_positions(state[p.MASK + name], numel) for name, numel in numels.items()}
        return cls(
            numels=dict(numels), active=active,
            dense_shapes={key: tuple(a.shape) for key, a in state.items() if key.startswith(p.DENSE)},
            growth={name: int(count) for name, count in p.with_prefix(p.GROW, plan).items()},
            masks_in_reply=bool(p.with_prefix(p.READJUST, plan)),
            sent={key: a for key, a in state.items() if key.startswith((p.VALUES, p.DENSE))},
        )  # fmt: skip

    def keys(self) -> set[str]:
        keys = {p.VALUES + name for name in self.numels} | set(self.dense_shapes)
        keys |= {p.MASK + name for name in self.numels} if self.masks_in_reply else set()
        return keys | {prefix + name for name in self.growth for prefix in (p.GROWTH_INDICES, p.GROWTH_MAGNITUDES)}

    def max_bytes(self) -> int:
        """The largest honest payload: every value, dense param, mask and growth candidate."""
        values = 4 * sum(len(a) for a in self.active.values())
        dense = 4 * sum(math.prod(shape) for shape in self.dense_shapes.values())
        masks = sum((n + 7) // 8 for n in self.numels.values()) if self.masks_in_reply else 0
        return values + dense + masks + 8 * sum(self.growth.values())


def read_reply(reply: Message, round_num: int) -> tuple[p.Arrays, dict]:
    """(update arrays, metrics) of a train reply, or ``RejectedUpdate`` for the wrong round or records."""
    if reply.metadata.group_id != str(round_num):
        raise RejectedUpdate(f"reply for round {reply.metadata.group_id!r}, this is round {round_num}")
    content = reply.content
    if set(content.keys()) != {p.UPDATE, p.METRICS}:
        raise RejectedUpdate(f"reply records {sorted(content.keys())}, expected {sorted([p.UPDATE, p.METRICS])}")
    update, metrics = content[p.UPDATE], content[p.METRICS]
    if not isinstance(update, ArrayRecord) or not isinstance(metrics, MetricRecord):
        raise RejectedUpdate(f"records of the wrong type: {type(update).__name__}, {type(metrics).__name__}")
    return {key: _npy(key, array) for key, array in update.items()}, dict(metrics)


def _npy(key: str, array: Array) -> np.ndarray:
    """The array of a ``.npy`` payload whose header agrees with its size, read without pickle: a
    header claiming a huge shape must not make the server allocate it."""
    if array.stype != SType.NUMPY:
        raise RejectedUpdate(f"{key}: serialization {array.stype!r}, expected {SType.NUMPY!r}")
    stream = io.BytesIO(array.data)
    try:
        version = npy.read_magic(stream)
        shape, _, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(stream)
        if dtype.hasobject or math.prod(shape) * dtype.itemsize != len(array.data) - stream.tell():
            raise ValueError(f"header {dtype.str} {shape} does not match {len(array.data) - stream.tell()} data bytes")
        return np.load(io.BytesIO(array.data), allow_pickle=False)
    except Exception as error:  # noqa: BLE001 - any unreadable array is the client's fault
        raise RejectedUpdate(f"{key}: unreadable array ({type(error).__name__}: {error})") from None


def check_update(expected: ExpectedUpdate, arrays: p.Arrays, metrics: dict, max_num_examples: int) -> float:
    """The update's L2 distance from the sent model; ``RejectedUpdate`` naming the first fault."""
    _check_metrics(metrics, max_num_examples)
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise RejectedUpdate("update entries that are not arrays")
    size, bound = p.payload_bytes(arrays), expected.max_bytes()
    if size > bound:
        raise RejectedUpdate(f"payload of {size} bytes, the layout allows at most {bound}")
    missing, extra = sorted(expected.keys() - set(arrays)), sorted(set(arrays) - expected.keys())
    if missing or extra:
        raise RejectedUpdate(f"missing keys {missing[:5]}, unexpected keys {extra[:5]}")
    for key, array in arrays.items():
        dtype = DTYPES[key[: key.index("/") + 1]]
        if array.dtype != dtype:
            raise RejectedUpdate(f"{key} has dtype {array.dtype.str}, expected {np.dtype(dtype).str}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise RejectedUpdate(f"{key} holds NaN or Inf")
    for key, shape in expected.dense_shapes.items():
        if arrays[key].shape != shape:
            raise RejectedUpdate(f"{key} has shape {arrays[key].shape}, expected {shape}")
    positions = {name: _reply_positions(expected, arrays, name) for name in expected.numels}
    for name, count in expected.growth.items():
        _check_growth(expected, arrays, name, count)
    return _update_norm(expected, arrays, positions)


def norm_scores(norms: list[float]) -> list[float]:
    """How many MADs (median absolute deviations) each norm lies above the median of ``norms``; all 0
    when there are too few norms for a statistic. A reply scoring above ``reject-norm-mads`` is rejected."""
    if len(norms) < MIN_REPLIES_FOR_NORMS:
        return [0.0] * len(norms)
    median = float(np.median(norms))
    mad = float(np.median(np.abs(np.asarray(norms) - median)))
    # A few replies with nearly equal norms make the MAD tiny and honest spread look extreme.
    mad = max(mad, MIN_MAD_FRACTION * median, 1e-12)
    return [(norm - median) / mad for norm in norms]


def _check_metrics(metrics: dict, max_num_examples: int) -> None:
    missing = sorted(METRIC_TYPES.keys() - metrics.keys())
    extra = sorted(str(key) for key in metrics.keys() - METRIC_TYPES.keys())
    if missing or extra:
        raise RejectedUpdate(f"metrics: missing {missing}, unexpected {extra[:5]}")
    for key, types in METRIC_TYPES.items():
        value = metrics[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RejectedUpdate(f"metric {key} is {type(value).__name__} {value!r}, expected {types[-1].__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise RejectedUpdate(f"metric {key} is {value}")
    if not 0 < metrics[p.NUM_EXAMPLES] <= max_num_examples:
        raise RejectedUpdate(f"num-examples {metrics[p.NUM_EXAMPLES]} outside 1..{max_num_examples}")
    if metrics[p.SECONDS] < 0:
        raise RejectedUpdate(f"seconds {metrics[p.SECONDS]} is negative")


def _reply_positions(expected: ExpectedUpdate, arrays: p.Arrays, name: str) -> np.ndarray:
    """The active positions the reply's values sit at: the sent mask's, or FedDST's own mask."""
    positions = expected.active[name]
    if expected.masks_in_reply:
        numel, bits = expected.numels[name], arrays[p.MASK + name]
        if bits.shape != ((numel + 7) // 8,):
            raise RejectedUpdate(f"{p.MASK + name} has shape {bits.shape}, {numel} weights need {(numel + 7) // 8}")
        if numel % 8 and bits[-1] & (0xFF >> (numel % 8)):
            raise RejectedUpdate(f"{p.MASK + name} sets padding bits past weight {numel - 1}")
        sent, positions = len(positions), p.active_positions(bits, numel)
        if len(positions) > sent:  # FedDST regrows at most as many weights as it prunes
            raise RejectedUpdate(f"{p.MASK + name} keeps {len(positions)} weights, more than the {sent} sent")
    values = arrays[p.VALUES + name]
    if values.shape != positions.shape:
        raise RejectedUpdate(f"{p.VALUES + name} has shape {values.shape}, the mask has {len(positions)} active")
    return positions


def _check_growth(expected: ExpectedUpdate, arrays: p.Arrays, name: str, count: int) -> None:
    indices, magnitudes = arrays[p.GROWTH_INDICES + name], arrays[p.GROWTH_MAGNITUDES + name]
    if indices.ndim != 1 or indices.shape != magnitudes.shape:
        raise RejectedUpdate(f"growth of {name}: indices {indices.shape} and magnitudes {magnitudes.shape} differ")
    if len(indices) > count:
        raise RejectedUpdate(f"growth of {name}: {len(indices)} candidates, {count} asked for")
    numel = expected.numels[name]
    if len(indices) and (indices.min() < 0 or indices.max() >= numel):
        raise RejectedUpdate(f"growth of {name}: indices outside 0..{numel - 1}")
    ordered = np.sort(indices)  # O(k log k) in the candidates, nothing of the layer's size per reply
    if (ordered[1:] == ordered[:-1]).any():
        raise RejectedUpdate(f"growth of {name}: duplicated indices")
    active = expected.active[name]  # ascending
    slots = np.minimum(np.searchsorted(active, ordered), max(len(active) - 1, 0))
    if len(active) and (active[slots] == ordered).any():
        raise RejectedUpdate(f"growth of {name}: indices at active weights")
    if (magnitudes < 0).any():
        raise RejectedUpdate(f"growth of {name}: negative magnitudes")


def _update_norm(expected: ExpectedUpdate, arrays: p.Arrays, positions: dict[str, np.ndarray]) -> float:
    squares = 0.0
    for key in expected.dense_shapes:
        squares += _squared_distance(arrays[key], expected.sent[key])
    for name, numel in expected.numels.items():
        reply, sent = arrays[p.VALUES + name], expected.sent[p.VALUES + name]
        if expected.masks_in_reply:  # different supports: compare the dense weights
            reply, sent = _dense(positions[name], reply, numel), _dense(expected.active[name], sent, numel)
        squares += _squared_distance(reply, sent)
    return math.sqrt(squares)


def _squared_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(np.square(a.astype(np.float64) - np.asarray(b, np.float64))))


def _dense(positions: np.ndarray, values: np.ndarray, numel: int) -> np.ndarray:
    dense = np.zeros(numel, np.float64)
    dense[positions] = values
    return dense
