"""Fault injection (``server/faults.py``): every malformation is one the validator rejects, the
choice of faulty nodes is seeded, and rounds under faults aggregate only the honest replies."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedmef import protocol as p
from fedmef import wire
from fedmef.config import RunConfig
from server.faults import KINDS, MALFORMATIONS, FaultyGrid, malform
from server.schedule import round_phase
from server.server_app import Federation
from server.validation import ExpectedUpdate, RejectedUpdate, check_update

#: layer fc: 10 weights, active at 0, 3 and 7; one dense bias; two growth candidates asked for
STATE = {"v/fc": np.array([1.0, 2.0, 3.0], np.float32), "m/fc": p.mask_bits(np.isin(np.arange(10), [0, 3, 7])),
         "d/fc.bias": np.zeros(2, np.float32)}  # fmt: skip
HONEST = {"v/fc": np.array([1.0, 2.0, 5.0], np.float32), "d/fc.bias": np.array([0.0, 1.0], np.float32),
          "gi/fc": np.array([1, 4], np.int32), "gv/fc": np.array([0.5, 0.25], np.float32)}  # fmt: skip


@pytest.mark.parametrize("how", MALFORMATIONS)
def test_every_malformation_is_rejected(how):
    layout = ExpectedUpdate.of(STATE, {"grow/fc": 2}, {"fc": 10})
    update, metrics = {k: v.copy() for k, v in HONEST.items()}, {p.NUM_EXAMPLES: 5, p.TRAIN_LOSS: 0.3, p.SECONDS: 1.0}
    assert check_update(layout, dict(update), dict(metrics), 1000) > 0
    malform(how, update, metrics)
    with pytest.raises(RejectedUpdate):
        check_update(layout, update, metrics, 1000)


def test_unknown_malformation_is_an_error():
    with pytest.raises(ValueError, match="unknown malformation 'bitflip'"):
        malform("bitflip", dict(HONEST), {})


def test_fault_fraction_out_of_range_is_an_error():
    with pytest.raises(ValueError, match=r"fault-fraction must be in \[0, 1\], got 1.5"):
        FaultyGrid(None, 1.5, 0)


def test_faulty_nodes_are_seeded_and_cycle_through_the_kinds():
    grid = FaultyGrid(None, 0.3, seed=7)
    nodes = list(range(100, 110))
    first = grid.choose(4, nodes)
    assert first == grid.choose(4, nodes) and len(first) == 3
    assert sorted(first.values()) == sorted(KINDS)
    assert first != grid.choose(5, nodes) or first != FaultyGrid(None, 0.3, seed=8).choose(4, nodes)
    assert FaultyGrid(None, 0.0, seed=7).choose(4, nodes) == {}


class NoisyGrid:
    """Six honest nodes: each answers a train instruction with the sent state plus small noise of
    the same size (so honest update norms agree), and an evaluation with a fixed accuracy."""

    def get_node_ids(self):
        return [11, 12, 13, 14, 15, 16]

    def send_and_receive(self, messages, timeout):
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            rng = np.random.default_rng(node)
            if message.metadata.message_type == p.EVALUATE:
                metrics = {p.NUM_EXAMPLES: 10, p.LOSS: 0.5, p.ACCURACY: 0.5}
                replies.append(Message(RecordDict({p.METRICS: MetricRecord(metrics)}), reply_to=message))
                continue
            state = {k: a.numpy() for k, a in message.content[p.STATE].items()}
            update = {k: (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32)
                      for k, a in state.items() if k.startswith((p.VALUES, p.DENSE))}  # fmt: skip
            metrics = {p.NUM_EXAMPLES: 20, p.TRAIN_LOSS: 0.5, p.SECONDS: 0.1}
            content = RecordDict({p.UPDATE: ArrayRecord({k: Array(v) for k, v in update.items()}),
                                  p.METRICS: MetricRecord(metrics)})  # fmt: skip
            replies.append(Message(content, reply_to=message))
        return replies


def test_rounds_under_faults_aggregate_only_the_honest_replies(tmp_path, monkeypatch, capsys):
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # what a ServerApp process has
        monkeypatch.setattr(TaskIdentity, name, value)
    config = RunConfig.from_run_config({"backend": "torch", "num-rounds": 6, "clients-per-round": 6,
                                        "output-dir": str(tmp_path)})  # fmt: skip
    grid = FaultyGrid(NoisyGrid(), fraction=0.5, seed=config.seed)
    federation = Federation(grid, config)
    for round_num in range(1, 7):
        before = wire.encode_state(federation.model)
        federation.round(round_phase(config, round_num))
        after = wire.encode_state(federation.model)
        # the mean of three honest N(0, 0.01) changes stays far below 0.05; a x-10 update would not
        assert max(float(np.abs(after[k] - before[k]).max()) for k in before if k.startswith(p.VALUES)) < 0.05
    rows = federation.rundir.rows
    # three faulty nodes a round, one of each kind: the dropout is a failure, the other two are rejected
    assert [(r["clients"], r["failures"], r["rejected"]) for r in rows] == [(3, 1, 2)] * 6
    assert grid.injected == {"dropout": 6, "malformed": 6, "scaled": 6}
    log = capsys.readouterr().out
    for how in MALFORMATIONS[:-2] + MALFORMATIONS[-1:]:  # no growth asked before an adjustment: NaN instead
        assert f"fault malformed ({how})" in log
    assert log.count("MADs above the median") == 6  # every scaled update caught by the norm check
