"""Live check of the Java "virtual phone" against a real Flower 1.41 SuperLink on loopback.

The jar (android_client/node/target/fedmef-node.jar) is built by Maven, not here: a missing jar
fails with the command to run. Its ``--smoke`` mode registers, activates, sends one heartbeat,
pulls once (nothing is waiting), deactivates and unregisters. The SuperLink's own log must show
the same node activated and deactivated; a second run with the same (now unregistered) key must
fail with advice. Imports only the standard library and pytest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .tls_support import write_certificates

REPO = Path(__file__).resolve().parents[1]
JAR = REPO / "android_client" / "node" / "target" / "fedmef-node.jar"
VENV_BIN = Path(sys.executable).parent
SMOKE = re.compile(
    r"smoke: node (\d+) registered, activated, heartbeat success=true, pulled nothing, deactivated, unregistered"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"flower-superlink exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"flower-superlink did not open port {port} in {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Ends the process group we started (the SuperLink and the SuperExec it spawns)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def require_jar() -> str:
    if not JAR.is_file():
        pytest.fail(f"{JAR} is missing: build it first with `make java` "
                    "(or `cd android_client && mvn -B package`)")
    java = shutil.which("java")
    if java is None:
        pytest.fail("no `java` on PATH (JDK 17 needed for the Java node)")
    return java


def flower_env(home: Path) -> dict[str, str]:
    """Flower's processes start each other by name (flower-superexec, flwr-serverapp)."""
    return dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
                PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def superlink(tmp_path):
    """A SuperLink on a free loopback port with a private FLWR_HOME: (address, log path)."""
    port = free_port()
    log = tmp_path / "superlink.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=flower_env(tmp_path / "flwr"), cwd=tmp_path,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log)
        yield f"127.0.0.1:{port}", log
    finally:
        stop(process)


def node_command(java: str, address: str, key: Path, *args: str) -> list[str]:
    return [java, "-jar", str(JAR), "--superlink", address, "--insecure", "--key", str(key), *args]


def test_java_node_smoke_against_a_real_superlink(tmp_path, superlink):
    java = require_jar()
    address, log = superlink
    key = tmp_path / "node-key.pem"
    node = subprocess.run(node_command(java, address, key, "--smoke"),
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    output = node.stdout + node.stderr
    assert node.returncode == 0, output
    assert re.search(r"^ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+$", node.stdout, re.M), output
    match = SMOKE.search(node.stdout)
    assert match, output
    node_id = match.group(1)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")

    # the SuperLink saw this node come and go (its log is written asynchronously)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"Deactivated node_id={node_id}" not in log.read_text():
        time.sleep(0.2)
    text = log.read_text()
    assert f"Activated node_id={node_id}" in text, text
    assert f"Deactivated node_id={node_id}" in text, text

    # flwr 1.41 never re-registers an unregistered key: the same key file now fails with advice
    again = subprocess.run(node_command(java, address, key, "--smoke"),
                           capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"using {key}" in again.stdout
    assert "HTTP 412 code 2004" in again.stderr and "use a new key" in again.stderr, again.stderr


def test_java_node_over_tls_with_supernode_auth(tmp_path):
    """https trusting the SuperLink's CA; with SuperNode auth on, self-registration is refused and
    the node activates once an admin registered its KEY.pub with `flwr supernode register`."""
    java = require_jar()
    write_certificates(tmp_path)
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = tmp_path / "superlink.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "flower-superlink"), "--ssl-certfile", "server.pem", "--ssl-keyfile", "server.key",
             "--ssl-ca-certfile", "ca.pem", "--enable-supernode-auth", "--disable-runtime-dependency-installation",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=flower_env(tmp_path / "flwr"), cwd=tmp_path,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, log)
        key = tmp_path / "node-key.pem"
        tls = ["--root-certificates", str(tmp_path / "ca.pem")]
        command = [java, "-jar", str(JAR), "--superlink", address, *tls, "--key", str(key), "--smoke"]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "HTTP 412 code 2001" in refused.stderr and "HTTP 412 code 2004" in refused.stderr, refused.stderr
        public = Path(f"{key}.pub")
        assert public.read_text().startswith("ecdsa-sha2-nistp256 ")

        home = tmp_path / "flwr-cli"
        home.mkdir()
        (home / "config.toml").write_text(
            f'[superlink.javatest]\naddress = "{address}"\nroot-certificates = "{tmp_path / "ca.pem"}"\n')
        admin = subprocess.run([str(VENV_BIN / "flwr"), "supernode", "register", str(public), "javatest"],
                               capture_output=True, text=True, timeout=120, cwd=home, env=flower_env(home))
        assert admin.returncode == 0, admin.stdout + admin.stderr
        registered = re.search(r"SuperNode (\d+) registered", admin.stdout)
        assert registered, admin.stdout

        node = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert node.returncode == 0, node.stdout + node.stderr
        assert (f"smoke: node {registered.group(1)} (already registered), activated, heartbeat success=true, "
                "pulled nothing, deactivated") in node.stdout, node.stdout + node.stderr

        wrong_ca = [java, "-jar", str(JAR), "--superlink", address, "--insecure", "--key", str(key), "--smoke"]
        plain = subprocess.run(wrong_ca, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert plain.returncode == 1, "plain http to a TLS SuperLink must fail"
    finally:
        stop(process)


ECHO_PYPROJECT = """\
[project]
name = "javaecho"
version = "1.0.0"
dependencies = ["flwr==1.41.0"]

[tool.flwr.app]
publisher = "fedmef"

[tool.flwr.app.components]
serverapp = "javaecho.server_app:app"
clientapp = "javaecho.client_app:app"

[tool.flwr.app.config]
out = ""
"""

ECHO_SERVER = """\
\"\"\"Sends the Java node a train instruction and a query (which it must refuse); saves the replies.\"\"\"
import json
import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    deadline = time.time() + 90
    nodes = []
    while not nodes and time.time() < deadline:
        nodes = list(grid.get_node_ids())
        time.sleep(0.5)
    state = {"v/conv1": np.array([0.5, -1.25, 3.0], np.float32), "d/fc.bias": np.zeros((2, 2), np.float32),
             "m/conv1": np.array([7], np.uint8), "x/conv1": np.array([1], np.int32)}
    train = Message(RecordDict({"state": ArrayRecord({k: Array(v) for k, v in state.items()}),
                                "plan": ConfigRecord({"round": 1, "lr": 0.05, "penalty": "squared"})}),
                    dst_node_id=nodes[0], message_type="train", group_id="1")
    query = Message(RecordDict({"plan": ConfigRecord({"round": 1})}), dst_node_id=nodes[0],
                    message_type="query", group_id="1")
    result = {}
    for name, message in (("train", train), ("query", query)):
        for reply in grid.send_and_receive([message], timeout=120):
            if reply.has_error():
                result[name] = {"error": [reply.error.code, reply.error.reason]}
            else:
                update = reply.content.array_records.get("update", {})
                result[name] = {
                    "update": {k: [a.dtype, list(a.shape), a.numpy().tolist()] for k, a in update.items()},
                    "metrics": dict(reply.content.metric_records["metrics"]),
                    "reply_to": reply.metadata.reply_to_message_id == message.metadata.message_id,
                }
    Path(context.run_config["out"]).write_text(json.dumps(result))
"""

ECHO_CLIENT = """\
from flwr.clientapp import ClientApp

app = ClientApp()
"""


def test_java_node_answers_a_real_serverapp(tmp_path, superlink):
    """A real ServerApp sends instructions through the SuperLink; the Java node (echo backend)
    pulls them, answers, and the ServerApp reads the replies: content and an error reply."""
    java = require_jar()
    address, log = superlink
    app = tmp_path / "javaecho"
    (app / "javaecho").mkdir(parents=True)
    (app / "pyproject.toml").write_text(ECHO_PYPROJECT)
    (app / "javaecho" / "__init__.py").write_text("")
    (app / "javaecho" / "server_app.py").write_text(ECHO_SERVER)
    (app / "javaecho" / "client_app.py").write_text(ECHO_CLIENT)
    home = tmp_path / "flwr-cli"
    home.mkdir()
    (home / "config.toml").write_text(f'[superlink.javatest]\naddress = "{address}"\ninsecure = true\n')
    out = tmp_path / "replies.json"
    node = subprocess.Popen(
        node_command(java, address, tmp_path / "node-key.pem", "--backend", "echo", "--max-rounds", "2",
                     "--poll-interval", "1", "--linger", "5", "--heartbeat-interval", "10"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, start_new_session=True,
    )
    try:
        run = subprocess.run(
            [str(VENV_BIN / "flwr"), "run", str(app), "javatest", "--stream", "--run-config", f'out="{out}"'],
            capture_output=True, text=True, timeout=240, cwd=home, env=flower_env(home),
        )
        assert run.returncode == 0, run.stdout + run.stderr
        node_output, _ = node.communicate(timeout=120)
        assert node.returncode == 0, node_output
        assert "answered 2 instruction(s)" in node_output, node_output
        assert out.is_file(), run.stdout + run.stderr + log.read_text()
        replies = json.loads(out.read_text())
        assert replies["train"]["update"] == {
            "v/conv1": ["float32", [3], [0.5, -1.25, 3.0]],
            "d/fc.bias": ["float32", [2, 2], [[0.0, 0.0], [0.0, 0.0]]],
        }
        assert replies["train"]["metrics"] == {"num-examples": 1, "train-loss": 0.0, "seconds": 0.0}
        assert replies["train"]["reply_to"] is True
        code, reason = replies["query"]["error"]
        assert code == 1 and "unknown message type 'query'" in reason, replies
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=30)


def test_committed_fleet_vectors_are_what_the_pinned_flwr_writes(tmp_path):
    """The Java tests read tests/vectors/fleet/: it must be the output of its generator today."""
    spec = importlib.util.spec_from_file_location("fleet_vectors", REPO / "tests" / "vectors" / "fleet.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.write(tmp_path)
    committed = REPO / "tests" / "vectors" / "fleet"
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    for relative in written:
        assert (tmp_path / relative).read_bytes() == (committed / relative).read_bytes(), (
            f"{relative} is stale: run `python tests/vectors/fleet.py`")
