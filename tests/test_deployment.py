"""Deployment on loopback: a real SuperLink, two SuperNodes and ``flwr run`` against them.

The SuperNodes load the ClientApp from the FAB the SuperLink hands them, so this proves the
namespace scheme outside simulation too (nothing of the checkout is on their ``sys.path``).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server import launch

from .flower_support import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_for(path: Path, text: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} x{count} not seen in {path} within {timeout} s:\n{path.read_text()[-3000:]}")


@pytest.fixture
def deployment(tmp_path):
    port = free_port()
    procs = []

    def start(name: str, *args: str) -> Path:
        log = tmp_path / f"{name}.log"
        home = tmp_path / name
        home.mkdir()
        env = launch.flower_env(home)
        with open(log, "w") as out:
            procs.append(subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=home, env=env, stdout=out, stderr=out))
        return log

    link_log = start(
        "superlink", "flower-superlink", "--insecure", "--port", str(port), "--database", ":flwr-in-memory:",
        "--disable-runtime-dependency-installation",
    )  # fmt: skip
    # the third node insists on ExecuTorch while the server exports for ONNX Runtime: every round it
    # answers with an error reply, and the server must go on with the other two
    node_configs = ["partition-id=0 num-partitions=2", "partition-id=1 num-partitions=2",
                    'partition-id=1 num-partitions=2 backend="executorch"']  # fmt: skip
    for node, node_config in enumerate(node_configs):
        start(
            f"supernode{node}", "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{port}",
            "--port", str(free_port()), "--node-config", node_config,
        )  # fmt: skip
    try:
        wait_for(link_log, "Activated node_id", 3, timeout=120)
        yield f"127.0.0.1:{port}", tmp_path
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_round_deployed_federation(deployment, monkeypatch):
    address, tmp_path = deployment
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "cli"))
    overrides = ["num-rounds=2", "local-epochs=1", f"output-dir={tmp_path / 'runs'}"]
    log = io.StringIO()
    run_dir = launch.run(ROOT, supernodes=0, overrides=overrides, stream=log, superlink=address)
    assert "cannot run a onnxruntime artifact" in log.getvalue()  # the failing node's reason reached the server
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["clients"]) for r in rows] == [2, 2]
    assert [int(r["failures"]) for r in rows] == [1, 1]
    assert float(rows[-1]["accuracy"]) > 0.3
    location = Path(json.loads((run_dir / "config.json").read_text())["code-location"])
    assert not location.is_relative_to(ROOT), "the ServerApp ran from the checkout, not from the FAB"
