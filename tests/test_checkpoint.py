"""The checkpoint, resuming a run directory, and rounds with missing replies, in one process.

``ScriptedGrid`` stands in for Flower's grid: four nodes that answer a train instruction with the
state they were sent nudged by 0.01 per node (deterministic updates), evaluation with fixed
metrics, and per node a scripted fault: ``silent`` (no reply: the round timeout) or
``unavailable`` (the SuperLink's own NODE_UNAVAILABLE reply, which names no node).
"""

from __future__ import annotations

import csv
import json
import random
import uuid

import numpy as np
import pytest
import torch
from flwr.app import Error, Message, Metadata, MetricRecord, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.supercore.task_identity import TaskIdentity

from fedmef import protocol as p
from fedmef import wire
from fedmef.config import RunConfig
from fedmef.task import initial_model
from server import checkpoint
from server.rundir import RunDirectory
from server.schedule import round_phase
from server.server_app import Federation

from .test_validation import _content

NODES = [11, 12, 13, 14]


class ScriptedGrid:
    def __init__(self, faults: dict | None = None):
        self.faults = faults or {}  # node -> "silent" | "unavailable"
        self.trained: list[int] = []

    def get_node_ids(self):
        return list(NODES)

    def send_and_receive(self, messages, timeout):
        replies = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex  # what Flower's grids do on push
            node = message.metadata.dst_node_id
            fault = self.faults.get(node)
            if fault == "silent":
                continue
            if fault == "unavailable":
                replies.append(superlink_error(message))
            elif message.metadata.message_type == p.EVALUATE:
                metrics = {p.NUM_EXAMPLES: 10, p.ACCURACY: 0.5}
                replies.append(Message(RecordDict({p.METRICS: MetricRecord(metrics)}), reply_to=message))
            else:
                self.trained.append(node)
                state = {k: a.numpy() for k, a in message.content[p.STATE].items()}
                nudge = np.float32(0.001 * (node - 10))
                update = {k: a + nudge for k, a in state.items() if k.startswith(("v/", "d/"))}
                metrics = {p.NUM_EXAMPLES: 10 * (node - 10), p.TRAIN_LOSS: 0.5, p.SECONDS: 0.1}
                replies.append(Message(_content(update, metrics), reply_to=message))
        return replies


def superlink_error(message: Message) -> Message:
    metadata = Metadata(run_id=1, message_id="", src_node_id=SUPERLINK_NODE_ID, dst_node_id=SUPERLINK_NODE_ID,
                        reply_to_message_id=message.metadata.message_id, group_id=message.metadata.group_id,
                        created_at=0.0, ttl=60.0, message_type=message.metadata.message_type)  # fmt: skip
    return Message(error=Error(ErrorCode.NODE_UNAVAILABLE, "Error: Node Unavailable"), metadata=metadata)


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # what a ServerApp process has
        monkeypatch.setattr(TaskIdentity, name, value)


def make_config(tmp_path, **overrides) -> RunConfig:
    values = {"backend": "torch", "num-rounds": 3, "clients-per-round": 4, "adjust-interval": 2,
              "adjust-end-fraction": 1.0, "output-dir": str(tmp_path), "run-name": "run"}  # fmt: skip
    return RunConfig.from_run_config(values | overrides)


def rows_of(run_dir) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "export_seconds")} for row in rows]


def test_checkpoint_round_trip_restores_model_rows_and_rngs(tmp_path):
    config = make_config(tmp_path)
    model = initial_model(config)
    rows = [{"round": 1, "accuracy": np.float64(0.25), "clients": 3}]
    saved = checkpoint.Checkpoint.of(2, model, rows)
    checkpoint.save(tmp_path, saved)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    assert [path.name for path in tmp_path.iterdir()] == [checkpoint.FILENAME], "a temporary file was left"

    other = initial_model(make_config(tmp_path, seed=1))
    loaded = checkpoint.load(tmp_path)
    loaded.restore(other)
    assert loaded.next_round == 2 and loaded.rows == [{"round": 1, "accuracy": 0.25, "clients": 3}]
    assert type(loaded.rows[0]["accuracy"]) is float
    for key, tensor in model.state_dict().items():  # weights and mask buffers
        assert torch.equal(other.state_dict()[key], tensor) and other.state_dict()[key].dtype == tensor.dtype, key
    assert any(key.endswith(".mask") for key in other.state_dict())
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_no_checkpoint_and_unknown_versions(tmp_path):
    assert checkpoint.load(tmp_path) is None
    torch.save({"version": 99}, tmp_path / checkpoint.FILENAME)
    with pytest.raises(ValueError, match="checkpoint version 99, this server reads 1"):
        checkpoint.load(tmp_path)


def test_resumed_run_continues_exactly_as_an_uninterrupted_one(tmp_path):
    whole = Federation(ScriptedGrid(), make_config(tmp_path / "a"))
    whole.run()
    # the same run killed after round 2 had been logged but before its checkpoint was written
    config = make_config(tmp_path / "b")
    crashed = Federation(ScriptedGrid(), config)
    for round_num in (1, 2):
        crashed.round(round_phase(config, round_num))
        if round_num == 1:
            checkpoint.save(crashed.rundir.path, checkpoint.Checkpoint.of(2, crashed.model, crashed.rundir.rows))
    assert [int(row["round"]) for row in rows_of(crashed.rundir.path)] == [1, 2]

    grid = ScriptedGrid()
    resumed = Federation(grid, make_config(tmp_path / "b", resume=True, **{"round-timeout": 30.0}))
    assert resumed.next_round == 2 and [int(row["round"]) for row in rows_of(resumed.rundir.path)] == [1]
    resumed.run()
    assert [int(row["round"]) for row in rows_of(resumed.rundir.path)] == [1, 2, 3]
    assert without_seconds(rows_of(resumed.rundir.path)) == without_seconds(rows_of(whole.rundir.path))
    final_a, final_b = torch.load(whole.rundir.path / "model.pt"), torch.load(resumed.rundir.path / "model.pt")
    assert all(torch.equal(final_a[key], final_b[key]) for key in final_a)
    assert (resumed.rundir.path / "report.md").is_file()
    assert len(grid.trained) == 2 * len(NODES), "rounds 2 and 3 only"


def test_finished_run_is_not_run_again(tmp_path, capsys):
    Federation(ScriptedGrid(), make_config(tmp_path, **{"num-rounds": 1})).run()
    grid = ScriptedGrid()
    Federation(grid, make_config(tmp_path, **{"num-rounds": 1, "resume": True})).run()
    assert "run run already finished (report.md): nothing to do" in capsys.readouterr().out
    assert not grid.trained


def test_existing_run_directory_needs_resume_and_the_same_config(tmp_path):
    config = make_config(tmp_path)
    RunDirectory(config, ["fc"])
    with pytest.raises(FileExistsError, match="exists: set resume=true to continue that run"):
        RunDirectory(config, ["fc"])
    with pytest.raises(ValueError, match=r"differs from the one it was started with \(lr: 0.05 -> 0.1\)"):
        RunDirectory(make_config(tmp_path, resume=True, lr=0.1), ["fc"])
    again = RunDirectory(make_config(tmp_path, resume=True, **{"round-timeout": 5.0, "min-replies": 2}), ["fc"])
    assert again.resumed and json.loads((again.path / "config.json").read_text())["round-timeout"] == 600.0


def test_resume_of_a_new_name_starts_the_run_and_says_so(tmp_path, capsys):
    fed = Federation(ScriptedGrid(), make_config(tmp_path, resume=True))
    assert not fed.rundir.resumed and fed.next_round == 1 and rows_of(fed.rundir.path) == []
    assert f"resume=true, but there is no run directory {tmp_path / 'run'} yet" in capsys.readouterr().out


def test_missing_nodes_are_logged_by_id_and_the_round_goes_on(tmp_path, capsys):
    config = make_config(tmp_path, **{"min-replies": 2, "round-timeout": 30.0})
    fed = Federation(ScriptedGrid({12: "silent", 14: "unavailable"}), config)
    before = wire.encode_state(fed.model)
    fed.round(round_phase(config, 1))
    row = fed.rundir.rows[-1]
    assert (row["clients"], row["failures"], row["model_kept"]) == (2, 2, 0)
    after = wire.encode_state(fed.model)
    assert any(not np.array_equal(before[key], after[key]) for key in before), "the two updates were not applied"
    log = capsys.readouterr().out
    assert "round 1: no update from node 12: no reply within round-timeout 30 s" in log
    assert "round 1: no update from node 14: NODE_UNAVAILABLE (5): Error: Node Unavailable" in log


def test_fewer_replies_than_min_replies_keep_the_model(tmp_path, capsys):
    config = make_config(tmp_path, **{"min-replies": 3, "round-timeout": 30.0})
    fed = Federation(ScriptedGrid({11: "silent", 13: "unavailable"}), config)
    before = wire.encode_state(fed.model)
    fed.round(round_phase(config, 1))
    after = wire.encode_state(fed.model)
    assert all(np.array_equal(before[key], after[key]) for key in before)
    row = fed.rundir.rows[-1]
    assert (row["clients"], row["failures"], row["model_kept"], row["bytes_up"]) == (0, 2, 1, 0)
    assert "round 1: 2 valid update(s), fewer than min-replies 3: keeping the previous model" in capsys.readouterr().out
    fed.rundir.finish(fed.model, {"clients": 0})
    report = (fed.rundir.path / "report.md").read_text()
    assert "- rounds that kept the previous model (fewer than min-replies = 3 valid updates): [1]" in report
