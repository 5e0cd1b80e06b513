"""Fault injection for reliability runs (``fault-fraction`` in the run config; 0 = off).

``FaultyGrid`` wraps the ServerApp's Flower grid. In every train round it picks, with a seeded
generator, ``round(fault-fraction × sampled)`` of the round's nodes and spoils what they send
back, cycling through three kinds so each round sees all of them:

* ``dropout`` — the reply never arrives (the node vanished mid-round);
* ``malformed`` — one of ``MALFORMATIONS``: NaN values, a truncated value array, a missing dense
  parameter, float64 values, a growth index outside the layer, or ``num-examples`` 0;
* ``scaled`` — the update's change from the sent state multiplied by ``SCALE`` (boosted and
  sign-flipped: an attempt to replace the global model).

The spoiling happens where replies reach the server, after Flower's transport and before
``validation``: the server sees exactly the bytes a faulty client would have sent. Evaluation
messages pass untouched. Every injection is printed, so a run's log tells what was injected and
its ``metrics.csv`` (``failures``, ``rejected``) what the server made of it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict

from fedmef import protocol as p

KINDS = ("dropout", "malformed", "scaled")
MALFORMATIONS = ("nan", "truncated", "missing-dense", "float64", "growth-outside", "zero-examples")
SCALE = -10.0


class FaultyGrid:
    """A Flower grid whose train replies suffer the configured faults (see the module docstring)."""

    def __init__(self, grid, fraction: float, seed: int):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fault-fraction must be in [0, 1], got {fraction}")
        self.grid, self.fraction, self.seed = grid, fraction, seed
        self.injected: Counter[str] = Counter()

    def __getattr__(self, name):  # everything but send_and_receive is the real grid's
        return getattr(self.grid, name)

    def send_and_receive(self, messages, timeout=None):
        messages = list(messages)
        replies = self.grid.send_and_receive(messages, timeout=timeout)
        train = [m for m in messages if m.metadata.message_type == p.TRAIN]
        if not train or not self.fraction:
            return replies
        round_num = int(train[0].metadata.group_id or 0)
        faults = self.choose(round_num, sorted(m.metadata.dst_node_id for m in train))
        instructions = {m.metadata.dst_node_id: m for m in train}
        spoiled = []
        for reply in replies:
            node = reply.metadata.src_node_id
            if node not in faults or reply.has_error():
                spoiled.append(reply)
                continue
            kind = faults[node]
            if kind == "dropout":
                self.note(round_num, node, kind)
                continue
            spoiled.append(self.spoil(reply, instructions[node], kind, round_num, node))
        return spoiled

    def choose(self, round_num: int, nodes: list[int]) -> dict[int, str]:
        """The round's faulty nodes and their kinds, the same for the same seed and round."""
        count = round(self.fraction * len(nodes))
        rng = np.random.default_rng([self.seed, round_num, 0xFA17])
        picked = rng.choice(len(nodes), size=count, replace=False)
        return {nodes[i]: KINDS[(round_num + j) % len(KINDS)] for j, i in enumerate(sorted(picked))}

    def spoil(self, reply: Message, instruction: Message, kind: str, round_num: int, node: int) -> Message:
        update = {key: value.numpy() for key, value in reply.content[p.UPDATE].items()}
        metrics = dict(reply.content[p.METRICS])
        if kind == "scaled":
            sent = {key: value.numpy() for key, value in instruction.content[p.STATE].items()}
            for key in update:
                if key.startswith((p.VALUES, p.DENSE)):
                    update[key] = (sent[key] + np.float32(SCALE) * (update[key] - sent[key])).astype(np.float32)
            detail = f"x{SCALE:g}"
        else:
            detail = malform(MALFORMATIONS[self.injected["malformed"] % len(MALFORMATIONS)], update, metrics)
        self.note(round_num, node, kind, detail)
        content = RecordDict({p.UPDATE: ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in update.items()}),
                              p.METRICS: MetricRecord(metrics)})  # fmt: skip
        return Message(content, reply_to=instruction)

    def note(self, round_num: int, node: int, kind: str, detail: str = "") -> None:
        self.injected[kind] += 1
        suffix = f" ({detail})" if detail else ""
        print(f"[fedmef] round {round_num}: injected fault {kind}{suffix} into node {node}", flush=True)


def malform(how: str, update: p.Arrays, metrics: dict) -> str:
    """Spoil ``update``/``metrics`` in place the way ``how`` names; return the way applied."""
    values = sorted(key for key in update if key.startswith(p.VALUES))
    dense = sorted(key for key in update if key.startswith(p.DENSE))
    growth = sorted(key for key in update if key.startswith(p.GROWTH_INDICES) and update[key].size)
    if how == "growth-outside" and not growth:
        how = "nan"  # no growth candidates this round: spoil the values instead
    if how == "nan":
        update[values[0]] = update[values[0]].copy()
        update[values[0]][0] = np.nan
    elif how == "truncated":
        update[values[-1]] = update[values[-1]][:-1]
    elif how == "missing-dense":
        del update[(dense or values)[0]]
    elif how == "float64":
        update[values[0]] = update[values[0]].astype(np.float64)
    elif how == "growth-outside":
        update[growth[0]] = update[growth[0]].copy()
        update[growth[0]][0] = np.iinfo(np.int32).max
    elif how == "zero-examples":
        metrics[p.NUM_EXAMPLES] = 0
    else:
        raise ValueError(f"unknown malformation {how!r}; choose one of {MALFORMATIONS}")
    return how
