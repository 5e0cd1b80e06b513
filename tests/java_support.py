"""Helpers for tests that run the Java "virtual phone" (``android_client/node``) beside real Flower processes.

The jar is built by Maven (``make java``), never here: a missing jar is a test failure naming that
command. Every process a test starts goes into a :class:`Processes` (its own session, its output in
a log file) and is stopped by process group when the test ends, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedmef import partitions

REPO = Path(__file__).resolve().parents[1]
JAR = REPO / "android_client" / "node" / "target" / "fedmef-node.jar"
BIN = Path(sys.executable).parent


def require_java() -> str:
    """The ``java`` executable, after checking the node jar is built (a failure otherwise, never a skip)."""
    if not JAR.is_file():
        pytest.fail(f"{JAR} is missing: build it first with `make java` (Maven install of the core and the node)")
    java = shutil.which("java")
    if java is None:
        pytest.fail("no `java` on PATH (JDK 17 needed for the Java node)")
    return java


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path
    watch: bool = True  # expected to run until stopped: its exit fails the test

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None


class Processes:
    """Processes started by one test, each in a new session, stopped by process group in ``stop``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: list[Process] = []

    def start(self, name: str, command: list, env: dict[str, str] | None = None, cwd: Path | None = None,
              watch: bool = True) -> Process:  # fmt: skip
        log = self.directory / f"{name}.log"
        with log.open("w") as out:
            popen = subprocess.Popen([str(c) for c in command], stdout=out, stderr=subprocess.STDOUT, env=env,
                                     cwd=cwd or self.directory, start_new_session=True)  # fmt: skip
        process = Process(name, popen, log, watch)
        self.started.append(process)
        return process

    def stop(self, process: Process, timeout: float = 20) -> None:
        """SIGTERM to the process group (the Java node then deactivates and unregisters), SIGKILL if it lingers."""
        if process.popen.poll() is None:
            _signal_group(process.popen.pid, signal.SIGTERM)
            try:
                process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=timeout)
        _signal_group(process.popen.pid, signal.SIGKILL)  # children left in the group (a SuperLink's SuperExec)

    def stop_all(self) -> None:
        for process in reversed(self.started):  # nodes before the SuperLink they talk to
            self.stop(process)

    def check_alive(self) -> None:
        for process in self.started:
            if process.watch and not process.running():
                pytest.fail(f"{process.name} exited with {process.popen.returncode}:\n{process.output()[-4000:]}")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(process: Process, text: str, count: int = 1, timeout: float = 120, poll: float = 0.2,
             processes: Processes | None = None) -> str:  # fmt: skip
    """Wait until ``process``'s log holds ``text`` ``count`` times; fail early when a watched process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exited = not process.running()  # before reading: an exited process's log is complete
        output = process.output()
        if output.count(text) >= count:
            return output
        if exited:
            break
        if processes is not None:
            processes.check_alive()
        time.sleep(poll)
    pytest.fail(f"{text!r} x{count} not in {process.name}'s log within {timeout} s:\n{process.output()[-4000:]}")


def flower_env(home: Path) -> dict[str, str]:
    """Environment of a Flower process: private FLWR_HOME, this venv's executables first on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
                PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")  # fmt: skip


def start_superlink(processes: Processes, tls: tuple[Path, Path, Path] | None = None,
                    auth: bool = False) -> tuple[str, Process]:  # fmt: skip
    """A SuperLink on a free loopback port (in-memory state); with ``tls`` = (ca, cert, key) over
    https, with ``auth`` SuperNode authentication on. Returns its address, once it accepts
    connections, and its process (its log shows ``Activated node_id=...`` per node)."""
    port = free_port()
    security = ["--insecure"] if tls is None else [
        "--ssl-ca-certfile", tls[0], "--ssl-certfile", tls[1], "--ssl-keyfile", tls[2]]  # fmt: skip
    command = [BIN / "flower-superlink", *security, *(["--enable-supernode-auth"] if auth else []),
               "--disable-runtime-dependency-installation", "--database", ":flwr-in-memory:",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    home = processes.directory / "superlink-home"
    link = processes.start("superlink", command, env=flower_env(home), cwd=home)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        processes.check_alive()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"127.0.0.1:{port}", link
        time.sleep(0.3)
    pytest.fail(f"flower-superlink did not open port {port}:\n{link.output()}")


def java_node_command(java: str, address: str, key: Path, *args: str, ca: Path | None = None) -> list[str]:
    security = ["--insecure"] if ca is None else ["--root-certificates", str(ca)]
    return [java, "-jar", str(JAR), "--superlink", address, *security, "--key", str(key), *args]


def start_java_node(processes: Processes, java: str, address: str, name: str, data: Path, *args: str,
                    ca: Path | None = None, key: Path | None = None) -> Process:  # fmt: skip
    """A Java node (ONNX Runtime backend) training on partition directory ``data``, polling every
    0.5 s; its artifact store (and its key, unless given) live in ``<tmp>/<name>/``."""
    home = processes.directory / name
    home.mkdir()
    command = java_node_command(java, address, key or home / "node-key.pem", "--data", str(data), "--store",
                                str(home / "store"), "--poll-interval", "0.5", *args, ca=ca)  # fmt: skip
    return processes.start(name, command, cwd=home)


def start_python_node(processes: Processes, address: str, name: str, node_config: str) -> Process:
    """A Python ``flower-supernode`` (insecure); its ClientApp comes from the run's FAB."""
    home = processes.directory / name
    env = flower_env(home) | {"FEDMEF_CLIENT_CACHE": str(home / "store")}
    command = [BIN / "flower-supernode", "--insecure", "--superlink", address, "--port", str(free_port()),
               "--node-config", node_config]  # fmt: skip
    return processes.start(name, command, env=env, cwd=home)


def write_partitions(out: Path, num_partitions: int, run_config: dict) -> list[Path]:
    """Every partition directory of ``run_config`` (docs/protocol.md §8), via ``python -m fedmef.partitions``'s main."""
    pairs = [f"{key}={value}" for key, value in run_config.items()]
    directories = []
    for partition_id in range(num_partitions):
        directory = out / f"partition-{partition_id}"
        # options before the positionals: `OUT --partition-id I ... key=value` trips argparse (see the report)
        partitions.main(["--partition-id", str(partition_id), "--num-partitions", str(num_partitions),
                         str(directory), *pairs])  # fmt: skip
        directories.append(directory)
    return directories
