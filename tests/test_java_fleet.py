"""Live check of the Java "virtual phone" against a real Flower 1.41 SuperLink on loopback.

The jar (android_client/node/target/fedmef-node.jar) is built by Maven, not here: a missing jar
fails with the command to run. Its ``--smoke`` mode registers, activates, sends one heartbeat,
pulls once (nothing is waiting), deactivates and unregisters. The SuperLink's own log must show
the same node activated and deactivated; a second run with the same (now unregistered) key must
fail with advice. Imports only the standard library and pytest.
"""

from __future__ import annotations

import importlib.util
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


def test_java_node_smoke_against_a_real_superlink(tmp_path):
    if not JAR.is_file():
        pytest.fail(f"{JAR} is missing: build it first with `make java` "
                    "(or `cd android_client && mvn -B package`)")
    java = shutil.which("java")
    if java is None:
        pytest.fail("no `java` on PATH (JDK 17 needed for the Java node)")
    superlink_bin = VENV_BIN / "flower-superlink"
    port = free_port()
    log = tmp_path / "superlink.log"
    env = dict(os.environ, FLWR_HOME=str(tmp_path / "flwr"), PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    key = tmp_path / "node-key.pem"
    with log.open("w") as out:
        superlink = subprocess.Popen(
            [str(superlink_bin), "--insecure", "--disable-runtime-dependency-installation",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
        )
    try:
        wait_for_port(port, superlink, log)
        node = subprocess.run(
            [java, "-jar", str(JAR), "--superlink", f"127.0.0.1:{port}", "--insecure", "--key", str(key), "--smoke"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )
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
        again = subprocess.run(
            [java, "-jar", str(JAR), "--superlink", f"127.0.0.1:{port}", "--insecure", "--key", str(key), "--smoke"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"using {key}" in again.stdout
        assert "HTTP 412 code 2004" in again.stderr and "use a new key" in again.stderr, again.stderr
    finally:
        stop(superlink)


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
