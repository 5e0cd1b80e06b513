"""Deployment on loopback as a user runs it: a TLS SuperLink with SuperNode authentication, three
registered SuperNodes (each its own ``--port``) and ``server.launch`` with ``--root-certificates``.

The SuperNodes load the ClientApp from the FAB the SuperLink hands them, so this proves the
namespace scheme outside simulation too (nothing of the checkout is on their ``sys.path``). The
SuperLink runs in its own directory and keeps its run directory there; the launcher must bring the
results back through Flower's log into its own ``--output-dir`` (``server/results.py``), as it must
when the SuperLink is remote or in a container.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from server import certs, launch

from .flower_support import free_port, stop_groups, wait_for_port, wait_for_text

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODES = 3


@dataclass
class Deployment:
    address: str
    ca: Path
    keys: Path
    directory: Path
    cli: Path  # the launcher's FLWR_HOME
    start: Callable[..., subprocess.Popen]

    def start_supernode(self, index: int, node_config: str) -> subprocess.Popen:
        return self.start(f"supernode{index}", "flower-supernode", "--superlink", self.address,
                          "--root-certificates", str(self.ca), "--auth-supernode-private-key",
                          str(self.keys / f"supernode-{index}.key"), "--port", str(free_port()),
                          "--node-config", node_config)  # fmt: skip


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A TLS SuperLink with SuperNode authentication and three registered SuperNodes; the key pair
    ``supernode-3`` is left unregistered."""
    tmp_path = tmp_path_factory.mktemp("deployment")
    keys = tmp_path / "keys"
    ca, cert, key = certs.write_certificates(keys)
    certs.generate(keys, [], supernodes=NODES + 1)
    port = free_port()
    procs = []

    def start(name: str, *args: str) -> subprocess.Popen:
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        with open(tmp_path / f"{name}.log", "a") as out:
            # its own process group: a SuperNode starts a SuperExec that can outlive it
            procs.append(subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=home, env=launch.flower_env(home),
                                          stdout=out, stderr=out, start_new_session=True))  # fmt: skip
        return procs[-1]

    try:
        start("superlink", "flower-superlink", "--ssl-ca-certfile", str(ca), "--ssl-certfile", str(cert),
              "--ssl-keyfile", str(key), "--enable-supernode-auth", "--host", "127.0.0.1", "--port", str(port),
              "--database", ":flwr-in-memory:", "--disable-runtime-dependency-installation")  # fmt: skip
        wait_for_port(port, timeout=90)
        setup = Deployment(f"127.0.0.1:{port}", ca, keys, tmp_path, tmp_path / "cli", start)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FLWR_HOME", str(setup.cli))
            for node in range(NODES):
                launch.register_supernode(setup.address, ca, keys / f"supernode-{node}.pub")
        # the third node insists on ExecuTorch while the server exports for ONNX Runtime: every round it
        # answers with an error reply, and the server must go on with the other two
        for node, node_config in enumerate(["partition-id=0 num-partitions=2", "partition-id=1 num-partitions=2",
                                            'partition-id=1 num-partitions=2 backend="executorch"']):  # fmt: skip
            setup.start_supernode(node, node_config)
        wait_for_text(tmp_path / "superlink.log", "Activated node_id", NODES, timeout=120)
        yield setup
    finally:
        stop_groups(procs)


def test_three_round_federation_results_reach_the_launcher(deployment, monkeypatch):
    monkeypatch.setenv("FLWR_HOME", str(deployment.cli))
    user_dir = deployment.directory / "user-results"
    log = io.StringIO()
    run_dir = launch.run(ROOT, supernodes=0, overrides=["num-rounds=3", "local-epochs=1"], stream=log,
                         superlink=deployment.address, root_certificates=deployment.ca,
                         output_dir=user_dir)  # fmt: skip
    assert run_dir.parent == user_dir.resolve(), run_dir
    # the server kept its own run directory (output-dir "runs" in the SuperLink's working directory);
    # the user's copy must not depend on it
    server_runs = deployment.directory / "superlink" / "runs"
    assert (server_runs / run_dir.name / "report.md").is_file(), log.getvalue()[-3000:]
    shutil.rmtree(server_runs)
    assert "[fedmef] results +" not in log.getvalue()  # the block is for the launcher, not the screen
    assert "cannot run a onnxruntime artifact" in log.getvalue()  # the failing node's reason reached the server
    assert {"report.md", "metrics.csv", "config.json", "model.pt", "accuracy.png"} <= {
        path.name for path in run_dir.iterdir()}
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["clients"]) for r in rows] == [2, 2, 2]
    assert [int(r["failures"]) for r in rows] == [1, 1, 1]
    assert float(rows[-1]["accuracy"]) > 0.3
    location = Path(json.loads((run_dir / "config.json").read_text())["code-location"])
    assert not location.is_relative_to(ROOT), "the ServerApp ran from the checkout, not from the FAB"
    # the SuperLink keeps the run's log: the same results can be fetched again later
    run_id = re.search(r"Successfully started run (\d+)", log.getvalue()).group(1)
    again = deployment.directory / "fetched-again"
    assert launch.main(["--superlink", deployment.address, "--root-certificates", str(deployment.ca),
                        "--fetch", run_id, "--output-dir", str(again)]) == 0  # fmt: skip
    for path in run_dir.iterdir():
        assert (again / run_dir.name / path.name).read_bytes() == path.read_bytes(), path.name


def test_unregistered_supernode_is_refused_until_registered(deployment, monkeypatch, capsys):
    node = NODES  # its key pair was never registered
    refused = deployment.start_supernode(node, "partition-id=0 num-partitions=2")
    assert refused.wait(timeout=120) != 0
    assert "Failed to activate SuperNode" in (deployment.directory / f"supernode{node}.log").read_text()
    link_log = deployment.directory / "superlink.log"
    assert link_log.read_text().count("Activated node_id") == NODES
    # the same node, once an admin registered its key through the launcher, is let in
    monkeypatch.setenv("FLWR_HOME", str(deployment.cli))
    assert launch.main(["--superlink", deployment.address, "--root-certificates", str(deployment.ca),
                        "--register-supernode", str(deployment.keys / f"supernode-{node}.pub")]) == 0
    assert "registered" in capsys.readouterr().out
    deployment.start_supernode(node, "partition-id=0 num-partitions=2")
    wait_for_text(link_log, "Activated node_id", NODES + 1, timeout=120)
