"""End to end: Java "virtual phones" (``android_client/node``) as SuperNodes of the real FedMef server.

A SuperLink on loopback, Java nodes training the server-exported step in ONNX Runtime on partition
directories written by ``fedmef.partitions``, and the FedMef ServerApp started by the project's own
launcher (``server.launch.run``). Each test asserts on the run directory the server wrote:

- three Java nodes: every round aggregates all three, an adjustment round among them, accuracy
  rising, and the final federated validation answered by the Java nodes;
- Java and Python SuperNodes in one federation;
- TLS with SuperNode authentication (the Java nodes' keys registered with ``flwr supernode register``);
- a stored artifact corrupted between rounds: an error reply naming the file, the server resends it.

The jar is built by ``make java`` (``make test`` does it first); a missing jar fails the tests.
The export cache is shared by the module's federations (same model and graph key), so only the
first exports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from server import launch

from .java_support import (
    BIN,
    REPO,
    Process,
    Processes,
    flower_env,
    java_node_command,
    require_java,
    start_java_node,
    start_python_node,
    start_superlink,
    wait_for,
    write_partitions,
)
from .tls_support import write_certificates

# tiny federations: 3 clients on digits, one local epoch; round 2 extrudes and adjusts (prune/grow)
DATA = {"dataset": "digits", "seed": 0}
RUN = DATA | {
    "num-rounds": 3, "adjust-interval": 2, "adjust-end-fraction": 1.0, "extrusion-rounds": 2,
    "clients-per-round": 3, "local-epochs": 1, "backend": "ort", "round-timeout": 120.0,
}  # fmt: skip
NODES = 3


@pytest.fixture(scope="module")
def java():
    return require_java()


@pytest.fixture(scope="module")
def partitions(tmp_path_factory) -> list[Path]:
    """The three clients' shares of the run's data (disjoint from the server's test set)."""
    return write_partitions(tmp_path_factory.mktemp("partitions"), NODES, RUN)


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    """Run directories and the export cache, shared so that only the first federation exports."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def federation(address: str, run_config: dict, output_dir: Path, monkeypatch, tmp_path,
               ca: Path | None = None) -> tuple[Path, str]:
    """The FedMef ServerApp through ``server.launch.run`` on the SuperLink at ``address``:
    (run directory, the server's streamed log)."""
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "cli"))
    pairs = [f"{key}={value}" for key, value in run_config.items()] + [f"output-dir={output_dir}"]
    log = io.StringIO()
    try:
        run_dir = launch.run(REPO, supernodes=0, overrides=pairs, stream=log, superlink=address, root_certificates=ca,
                             output_dir=tmp_path / "results")
    except RuntimeError as error:
        pytest.fail(f"{error}:\n{log.getvalue()[-6000:]}")
    return run_dir, log.getvalue()


def metrics(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def column(rows: list[dict[str, str]], name: str, kind=int) -> list:
    return [kind(float(row[name])) if kind is int else kind(row[name]) for row in rows]


def instructions(node: Process, message_type: str) -> int:
    return len(re.findall(rf"instruction {message_type} [0-9a-f]{{64}}", node.output()))


def start_nodes(processes, java, address, link, partitions, count, **kwargs) -> list[Process]:
    """Java nodes on partitions 0..count-1, once the SuperLink has activated them all."""
    nodes = [start_java_node(processes, java, address, f"java{i}", partitions[i], "--partition-id", str(i), **kwargs)
             for i in range(count)]  # fmt: skip
    wait_for(link, "Activated node_id=", count, processes=processes)
    return nodes


def test_three_java_nodes_run_a_fedmef_federation(java, partitions, output_dir, processes, monkeypatch, tmp_path):
    address, link = start_superlink(processes)
    nodes = start_nodes(processes, java, address, link, partitions, NODES)
    run_dir, log = federation(address, RUN, output_dir, monkeypatch, tmp_path)

    rows = metrics(run_dir)
    assert column(rows, "round") == [1, 2, 3]
    assert column(rows, "clients") == [3, 3, 3], log
    assert column(rows, "failures") == [0, 0, 0], log
    assert column(rows, "extruding") == [1, 1, 0]
    assert column(rows, "adjusted") == [0, 1, 0]
    accuracy = column(rows, "accuracy", float)
    assert accuracy[-1] > accuracy[0] and accuracy[-1] > 0.3, accuracy  # chance is 0.1
    dense = int(rows[0]["dense_bytes"])
    assert all(0 < up < 0.25 * 3 * dense for up in column(rows, "bytes_up")), rows  # sparse both ways
    # the files travel once: round 1 carries the graphs, later rounds the sparse state (+ marked sets) only
    down = column(rows, "bytes_down")
    assert down[0] > 2 * max(down[1:]), down

    # the final federated validation reached every Java node, and each answered it
    assert "federated validation accuracy" in log and "over 3 clients" in log, log
    report = (run_dir / "report.md").read_text()
    assert re.search(r"federated validation accuracy of the final model: [0-9.]+ % \(3 clients", report), report
    for node in nodes:
        output = node.output()
        assert instructions(node, "train") == 3 and instructions(node, "evaluate") == 1, output
        assert output.count("pushed reply") == 4 and " failed: " not in output, output


def test_java_and_python_supernodes_in_one_federation(java, partitions, output_dir, processes, monkeypatch,
                                                      tmp_path):  # fmt: skip
    """Two Java nodes (partitions 0, 1) and a Python ``flower-supernode`` (partition 2 of the same
    three, computed by its ClientApp from the run config) train the same global model."""
    address, link = start_superlink(processes)
    python = start_python_node(processes, address, "python2", "partition-id=2 num-partitions=3")
    nodes = start_nodes(processes, java, address, link, partitions, 2)
    wait_for(link, "Activated node_id=", 3, processes=processes)
    run_dir, log = federation(address, RUN | {"num-rounds": 2}, output_dir, monkeypatch, tmp_path)

    rows = metrics(run_dir)
    assert column(rows, "clients") == [3, 3], log
    assert column(rows, "failures") == [0, 0], log
    assert float(rows[-1]["accuracy"]) > 0.3
    assert "over 3 clients" in log, log  # the final evaluation: both kinds of node answered
    for node in nodes:
        assert instructions(node, "train") == 2 and instructions(node, "evaluate") == 1, node.output()
    assert python.running(), python.output()


def test_java_nodes_over_tls_with_supernode_auth(java, partitions, output_dir, processes, monkeypatch, tmp_path):
    """TLS and SuperNode authentication: each Java node's key is registered by an admin with
    ``flwr supernode register KEY.pub`` (the node wrote KEY.pub on its first, refused start)."""
    ca, cert, key = write_certificates(tmp_path)
    address, link = start_superlink(processes, tls=(ca, cert, key), auth=True)
    cli = tmp_path / "cli"
    cli.mkdir(parents=True, exist_ok=True)
    launch.add_connection(cli, "fedmef-deployment", address, ca)  # for the admin's `flwr supernode register`
    first = [processes.start(f"first{i}", java_node_command(java, address, tmp_path / f"key{i}.pem", "--smoke", ca=ca),
                             watch=False) for i in range(2)]  # fmt: skip
    registered = []
    for i, attempt in enumerate(first):
        assert attempt.popen.wait(timeout=120) == 1, attempt.output()
        assert "HTTP 412 code 2001" in attempt.output(), attempt.output()  # self-registration refused
        admin = subprocess.run([BIN / "flwr", "supernode", "register", tmp_path / f"key{i}.pem.pub",
                                "fedmef-deployment"], capture_output=True, text=True, timeout=120, cwd=cli,
                               env=flower_env(cli))  # fmt: skip
        assert admin.returncode == 0, admin.stdout + admin.stderr
        registered.append(re.search(r"SuperNode (\d+) registered", admin.stdout).group(1))
    nodes = [start_java_node(processes, java, address, f"java{i}", partitions[i], "--partition-id", str(i), ca=ca,
                             key=tmp_path / f"key{i}.pem") for i in range(2)]  # fmt: skip
    wait_for(link, "Activated node_id=", 2, processes=processes)
    run_dir, log = federation(address, RUN | {"num-rounds": 2}, output_dir, monkeypatch, tmp_path, ca=ca)

    rows = metrics(run_dir)
    assert column(rows, "clients") == [2, 2], log
    assert column(rows, "failures") == [0, 0], log
    assert "over 2 clients" in log, log
    for node, node_id in zip(nodes, registered, strict=True):
        assert f"node {node_id} active" in node.output() and "self-registered" not in node.output(), node.output()
        assert instructions(node, "train") == 2, node.output()


def step_file_in(store: Path, output_dir: Path) -> tuple[Path, int]:
    """The stored ``step.onnx`` (``<store>/<sha256>``, the sha256 from the export's manifest) and its size."""
    for manifest in output_dir.glob("export-cache/*/manifest.json"):
        entry = next(f for f in json.loads(manifest.read_text())["files"] if f["name"] == "step.onnx")
        if (store / entry["sha256"]).is_file():
            return store / entry["sha256"], entry["size"]
    pytest.fail(f"no step.onnx of {output_dir}/export-cache in {store}: {sorted(store.iterdir())}")


def test_corrupted_stored_artifact_is_reported_and_resent(java, partitions, output_dir, processes, tmp_path):
    """After round 1 the step graph in one node's store is corrupted on disk: in round 2 the node
    verifies it before loading and answers with an error naming ``step.onnx``, the server counts a
    failure and forgets what it shipped, and in round 3 the node gets the file again and trains."""
    address, link = start_superlink(processes)
    healthy, faulty = start_nodes(processes, java, address, link, partitions, 2)
    pairs = [f"{key}={value}" for key, value in (RUN | {"clients-per-round": 2}).items()]
    # the server's run directory and export cache in output_dir; the launcher's copy of the results apart
    server = processes.start("launch", [BIN / "python", "-m", "server.launch", "--app", REPO, "--superlink", address,
                                        "--insecure", "--output-dir", tmp_path / "results", f"output-dir={output_dir}",
                                        *pairs],
                             env=dict(os.environ, FLWR_HOME=str(tmp_path / "cli")), cwd=REPO, watch=False)  # fmt: skip

    # the faulty node pushed its round-1 reply: freeze it before it can pull round 2 (the server
    # needs every reply of round 1 first), corrupt the stored file, let it go on
    wait_for(faulty, "pushed reply", 1, timeout=240, poll=0.02, processes=processes)
    os.kill(faulty.popen.pid, signal.SIGSTOP)
    try:
        assert instructions(faulty, "train") == 1, faulty.output()
        stored, size = step_file_in(processes.directory / faulty.name / "store", output_dir)
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
    finally:
        os.kill(faulty.popen.pid, signal.SIGCONT)
    wait_for(server, "[fedmef] report:", timeout=300, processes=processes)
    log = server.output()
    run_dir = Path(re.search(r"\[fedmef\] report: (\S+)/report.md", log).group(1))

    rows = metrics(run_dir)
    assert column(rows, "clients") == [2, 1, 2], log
    assert column(rows, "failures") == [0, 1, 0], log
    assert re.search(r"\[fedmef\] round 2: no update from node \d+: client error \(1\): step\.onnx: sha256 mismatch, "
                     r"expected [0-9a-f]{64}", log)
    assert "step.onnx: sha256 mismatch" in faulty.output()  # the node's own warning
    down = column(rows, "bytes_down")
    assert down[2] > down[1] + size, down  # the whole export went to the faulty node again in round 3
    assert stored.read_bytes() != bytes(data), "the resent file replaced the corrupted one"
    assert instructions(healthy, "train") == 3 and instructions(faulty, "train") == 3
