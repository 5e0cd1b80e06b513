"""Artifact and manifest integrity end to end (issue 13): a tampered download is refused by the
Python client and reported, the server counts that client failed for the round, resends its files
next round, and the federation goes on. The grid runs the real ClientApp handlers in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedmef import protocol as p
from fedmef.config import RunConfig
from python_client import client_app
from server.schedule import round_phase
from server.server_app import Federation

NODES = (21, 22, 23)
VICTIM = 22


def flip_byte(plan: dict, files: dict) -> None:
    name = sorted(files)[0]
    files[name] = files[name].copy()
    files[name][len(files[name]) // 2] ^= 0xFF


def edit_manifest(change):
    def tamper(plan: dict, files: dict) -> None:
        manifest = json.loads(plan[p.MANIFEST])
        change(manifest)
        plan[p.MANIFEST] = json.dumps(manifest)

    return tamper


def wrong_hash(manifest: dict) -> None:
    manifest["files"][0]["sha256"] = "0" * 64


def add_file(name: str):
    return lambda plan, files: files.__setitem__(p.FILE + name, np.frombuffer(b"not a graph", np.uint8))


TAMPERING = {
    "flipped-byte": (flip_byte, "sha256 mismatch"),
    "hash-mismatch": (edit_manifest(wrong_hash), "sha256 mismatch"),
    "schema-version": (edit_manifest(lambda m: m.update(schema_version=3)), "manifest schema version 3"),
    "unlisted-file": (add_file("extra.onnx"), "extra.onnx: sent by the server but not listed in the manifest"),
    "escaping-file": (add_file("../escaped.onnx"), "../escaped.onnx: sent by the server but not listed"),
    "escaping-manifest-name": (
        edit_manifest(lambda m: m["files"][0].update(name="../" + m["files"][0]["name"])), "malformed manifest"),
}  # fmt: skip


class ClientsInProcess:
    """Three nodes running the real ClientApp handlers; ``tamper`` spoils what the victim receives
    in round 1 (as a compromised server or network would), and every delivery is recorded."""

    def __init__(self, tamper, run_config: dict):
        self.tamper, self.run_config = tamper, run_config
        self.received_files: list[tuple[int, int, int]] = []  # (round, node, files)

    def get_node_ids(self):
        return list(NODES)

    def send_and_receive(self, messages, timeout):
        replies = []
        for message in messages:
            node, content = message.metadata.dst_node_id, message.content
            plan = dict(content[p.PLAN])
            files = {k: a.numpy() for k, a in content[p.ARTIFACTS].items()}
            round_num = int(message.metadata.group_id or 0)
            self.received_files.append((round_num, node, len(files)))
            if node == VICTIM and round_num == 1:
                self.tamper(plan, files)
                content = RecordDict({p.STATE: content[p.STATE], p.PLAN: ConfigRecord(plan),
                                      p.ARTIFACTS: client_app.to_record(files)})  # fmt: skip
                message = Message(content, dst_node_id=node, message_type=message.metadata.message_type,
                                  group_id=message.metadata.group_id)  # fmt: skip
            node_config = {"partition-id": NODES.index(node), "num-partitions": len(NODES)}
            context = Context(run_id=1, node_id=node, node_config=node_config, state=RecordDict(),
                              run_config=self.run_config)  # fmt: skip
            handler = client_app.train if message.metadata.message_type == p.TRAIN else client_app.evaluate
            replies.append(handler(message, context))
        return replies


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")  # shared: the round's ONNX export is made once for all cases


@pytest.mark.parametrize("case", TAMPERING)
def test_tampered_download_is_refused_reported_and_resent(case, output_dir, tmp_path, monkeypatch, capsys):
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # what a ServerApp process has
        monkeypatch.setattr(TaskIdentity, name, value)
    store = tmp_path / "client-store"
    monkeypatch.setenv("FEDMEF_CLIENT_CACHE", str(store))
    run_config = {"backend": "ort", "num-rounds": 2, "clients-per-round": 3, "local-epochs": 1,
                  "output-dir": str(output_dir)}  # fmt: skip
    tamper, reason = TAMPERING[case]
    grid = ClientsInProcess(tamper, run_config)
    federation = Federation(grid, RunConfig.from_run_config(run_config))
    for round_num in (1, 2):
        federation.round(round_phase(federation.config, round_num))

    rows = federation.rundir.rows
    assert [(r["clients"], r["failures"]) for r in rows] == [(2, 1), (3, 0)]
    log = capsys.readouterr().out
    assert f"round 1: no update from node {VICTIM}:" in log and reason in log
    # round 2: the victim alone gets the files again; the others already hold them
    assert {node for r, node, files in grid.received_files if r == 2 and files} == {VICTIM}
    stored = [path for path in store.rglob("*") if path.is_file()]
    assert stored and all(path.parent.parent == store and len(path.name) == 64 for path in stored)
    assert not list(tmp_path.rglob("escaped*")), "a shipped name wrote outside the client's store"
