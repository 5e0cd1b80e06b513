"""Helpers for tests that start Flower processes on loopback: free ports, waiting for a condition,
a log line or a listening port, and stopping process groups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s")


def wait_for_text(path: Path, text: str, count: int, timeout: float) -> None:
    """Until ``text`` appears ``count`` times in the log file ``path`` (its tail goes into the error)."""
    try:
        wait_until(lambda: path.is_file() and path.read_text(errors="replace").count(text) >= count, timeout,
                   f"{text!r} x{count} in {path}")  # fmt: skip
    except TimeoutError as error:
        tail = path.read_text(errors="replace")[-3000:] if path.is_file() else "(no log)"
        raise TimeoutError(f"{error}\n{tail}") from None


def wait_for_port(port: int, timeout: float) -> None:
    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout, f"a listener on port {port}", interval=0.3)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def stop_groups(procs: Iterable[subprocess.Popen], grace: float = 20) -> None:
    """SIGTERM the process group of every process (each started in a session of its own), wait up to
    ``grace`` seconds for each, then SIGKILL whatever of the groups is left (e.g. a SuperExec)."""
    procs = list(procs)
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)
