"""A deployed federation on loopback whose processes a test can kill: a SuperLink, SuperNodes, ``flwr run``.

Each process starts in its own session, so ``kill`` (SIGKILL) reaches what it spawned too: the
SuperLink's SuperExec and ServerApp processes, a SuperNode's ClientApp process. Descendants that
left the process group are found through ``/proc``. ``close`` stops whatever is still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import tomli_w

from server import launch

from .flower_support import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONNECTION = "loopback"


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def send(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``, its process group and every descendant (found before the first kill)."""
    pids = [proc.pid, *descendants(proc.pid)]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    send(pids, signal.SIGKILL)
    proc.wait(timeout=30)


class Loopback:
    """One SuperLink on a fixed port with a database file, SuperNodes, and ``flwr run`` calls."""

    def __init__(self, tmp_path: Path):
        self.tmp, self.port = tmp_path, free_port()
        self.database = tmp_path / "superlink.db"
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts = 0
        self.cli_home = tmp_path / "cli"
        self.cli_home.mkdir()
        connection = {"address": f"127.0.0.1:{self.port}", "insecure": True}
        (self.cli_home / "config.toml").write_text(tomli_w.dumps({"superlink": {CONNECTION: connection}}))

    def start(self, name: str, *command: str, home: Path | None = None) -> Path:
        self.starts += 1
        log = self.tmp / f"{name}-{self.starts}.log"
        home = home or self.tmp / name
        home.mkdir(exist_ok=True)
        with open(log, "w") as out:
            self.procs[name] = subprocess.Popen(
                [str(BIN / command[0]), *command[1:]], cwd=home, env=launch.flower_env(home), stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return log

    def superlink(self) -> Path:
        return self.start(
            "superlink", "flower-superlink", "--insecure", "--port", str(self.port), "--database", str(self.database),
            "--disable-runtime-dependency-installation",
        )  # fmt: skip

    def supernode(self, index: int, count: int) -> Path:
        return self.start(
            f"supernode{index}", "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{self.port}",
            "--port", str(free_port()), "--node-config", f"partition-id={index} num-partitions={count}",
        )  # fmt: skip

    def flwr_run(self, name: str, run_config: dict) -> Path:
        """``flwr run --stream`` of the checkout's app; its log (the ServerApp's output) is returned."""
        pairs = " ".join(f"{key}={tomli_w.dumps({'v': value}).split('=', 1)[1].strip()}"
                         for key, value in run_config.items())  # fmt: skip
        return self.start(name, "flwr", "run", str(ROOT), CONNECTION, "--stream", "--run-config", pairs,
                          home=self.cli_home)  # fmt: skip

    def kill(self, name: str) -> None:
        kill_tree(self.procs.pop(name))

    def close(self) -> None:
        """SIGTERM every process started and its descendants; SIGKILL what is left after 20 s."""
        pids = [pid for proc in self.procs.values() for pid in (proc.pid, *descendants(proc.pid))]
        send(pids, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        send(pids, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(timeout=30)
        self.procs.clear()
