"""Aggregation at scale: synthetic ResNet18-NF sparse updates through the server's real intake.

For each client count (default 10, 100, 1,000) a fresh process builds the CIFAR-10 ResNet18-NF at
density 0.1, the train instruction of an adjustment round (so every reply also carries growth
candidates) and then feeds that many replies, one Flower ``Message`` each, through
``server.aggregation.take_in``: ``validation.read_reply`` + ``check_update``, the running sums,
the norm screen (every 100th client sends its change scaled by 10 and must be taken back out),
the average and the growth scores. Replies are made on demand from their index, like a reply
store read as replies arrive, so only the server's own memory is measured (and the time spent
making them is subtracted). Reported: seconds,
seconds per client, and peak RSS above the process's RSS just before the first reply, against
the dense model's float32 size (target: ≤ 3×):

    .venv/bin/python -m benchmarks.aggregation_scale [--clients 10 100 1000] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SCALED_EVERY, SCALE = 100, 10.0


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


class SyntheticReplies:
    """Reply ``i``: the sent state plus noise, growth candidates at random inactive positions."""

    def __init__(self, instruction, state: dict, plan: dict, numels: dict, count: int):
        from fedmef import protocol as p

        self.instruction, self.state, self.count = instruction, state, count
        self.inactive = {name: np.flatnonzero(np.unpackbits(state[p.MASK + name], count=numel) == 0)
                         for name, numel in numels.items()}  # fmt: skip
        self.grow = {name: int(k) for name, k in p.with_prefix(p.GROW, plan).items()}
        self.making = 0.0  # seconds spent making replies: not the server's time

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict

        from fedmef import protocol as p

        if not 0 <= index < self.count:
            raise IndexError(index)
        start = time.perf_counter()
        rng = np.random.default_rng(index)
        scale = SCALE if index % SCALED_EVERY == SCALED_EVERY - 1 else 1.0
        update = {key: np.asarray(value + np.float32(scale * 1e-3) * rng.standard_normal(value.shape, np.float32))
                  for key, value in self.state.items() if key.startswith((p.VALUES, p.DENSE))}  # fmt: skip
        for name, k in self.grow.items():
            picked = self.inactive[name][np.unique(rng.integers(0, len(self.inactive[name]), size=k))].astype(np.int32)
            update[p.GROWTH_INDICES + name] = picked
            update[p.GROWTH_MAGNITUDES + name] = rng.random(picked.size, np.float32)
        metrics = {p.NUM_EXAMPLES: int(rng.integers(100, 600)), p.TRAIN_LOSS: 1.0, p.SECONDS: 1.0}
        content = RecordDict({p.UPDATE: ArrayRecord({k: Array(v) for k, v in update.items()}),
                              p.METRICS: MetricRecord(metrics)})  # fmt: skip
        reply = Message(content, reply_to=self.instruction)
        self.making += time.perf_counter() - start
        return 1000 + index, reply


def measure(clients: int) -> dict:
    """One client count in this process: seconds and peak RSS of the intake."""
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from fedmef import wire
    from fedmef.config import RunConfig
    from fedmef.models import prunable_layers
    from fedmef.task import initial_model
    from server.aggregation import take_in
    from server.schedule import local_plan, round_phase
    from server.validation import ExpectedUpdate

    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # a ServerApp process has these
        setattr(TaskIdentity, name, value)
    # the model is all that is needed of CIFAR-10: its shapes (no data is read)
    config = RunConfig.from_run_config({"model": "resnet18", "dataset": "cifar10", "data-path": "/nonexistent",
                                        "density": 0.1, "num-rounds": 40, "clients-per-round": clients})  # fmt: skip
    model = initial_model(config)
    phase = next(round_phase(config, r) for r in range(1, config.num_rounds + 1) if round_phase(config, r).adjust)
    plan, marked = wire.encode_plan(local_plan(config, phase, model), phase.round)
    state = wire.encode_state(model) | marked
    numels = {name: layer.weight.numel() for name, layer in prunable_layers(model).items()}
    expected = ExpectedUpdate.of(state, plan, numels)
    instruction = Message(RecordDict({"plan": ConfigRecord({})}), dst_node_id=1000, message_type="train",
                          group_id=str(phase.round))  # fmt: skip
    replies = SyntheticReplies(instruction, state, plan, numels, clients)
    dense_bytes = 4 * sum(param.numel() for param in model.parameters())
    rejected = []
    reset_peak()
    baseline = rss_kib("VmRSS")
    start = time.perf_counter()
    intake = take_in(replies, phase.round, expected, max_num_examples=10**6, reject_norm_mads=20.0,
                     reject=lambda node, reason: rejected.append(node))  # fmt: skip
    average, scores = intake.aggregate.average(), intake.aggregate.growth_scores()
    seconds = time.perf_counter() - start - replies.making
    peak = rss_kib("VmHWM")
    assert len(average) and len(scores)
    expected_rejected = clients // SCALED_EVERY
    return {"clients": clients, "seconds": seconds, "accepted": intake.aggregate.clients, "rejected": len(rejected),
            "expected_rejected": expected_rejected, "baseline_mb": baseline / 1024,
            "peak_above_mb": (peak - baseline) / 1024, "dense_mb": dense_bytes / 2**20}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--out", type=Path, default=RESULTS / "aggregation_scale.md")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one count, JSON out
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    rows = []
    for clients in args.clients:
        child = subprocess.run([sys.executable, "-m", "benchmarks.aggregation_scale", "--one", str(clients)],
                               capture_output=True, text=True, check=True)  # fmt: skip
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    load = os.getloadavg()
    lines = [
        "# Streaming aggregation at scale (ResNet18-NF, CIFAR-10 shapes, density 0.1, adjustment round)", "",
        f"Command: `.venv/bin/python -m benchmarks.aggregation_scale --clients {' '.join(map(str, args.clients))}` "
        f"(load average {load[0]:.2f} / {load[1]:.2f}). Each count in a fresh process; every reply is a Flower "
        f"`Message` decoded, validated and added by `server.aggregation.take_in`; every {SCALED_EVERY}th client "
        f"sends its change x{SCALE:g} and must be rejected. Peak RSS is VmHWM above VmRSS just before the first "
        "reply (the model, the instruction and its expected layout are in the baseline).", "",
        "| clients | seconds | ms per client | accepted | rejected (expected) | peak RSS above baseline MB "
        "| dense model MB | peak / dense |", "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['clients']} | {r['seconds']:.1f} | {1000 * r['seconds'] / r['clients']:.1f} | "
                     f"{r['accepted']} | {r['rejected']} ({r['expected_rejected']}) | {r['peak_above_mb']:.1f} | "
                     f"{r['dense_mb']:.1f} | {r['peak_above_mb'] / r['dense_mb']:.2f}x |")  # fmt: skip
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
