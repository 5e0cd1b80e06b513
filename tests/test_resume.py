"""Crash-resume on loopback: SIGKILL the SuperLink and its ServerApp mid-run, restart, resume.

A SuperLink with a database file and two SuperNodes run a 4-round federation under a fixed
run-name. Once round 2's row is in ``metrics.csv`` the SuperLink is killed with everything it
spawned (SuperExec, ServerApp). The SuperLink restarts on the same database and port, the
SuperNodes reconnect on their own, and ``flwr run`` with ``resume=true`` finishes the run from its
last checkpoint: every round in ``metrics.csv`` exactly once, the rows before the crash untouched.
"""

from __future__ import annotations

import csv

from .flower_support import wait_until

ROUNDS = 3


def metric_rows(run_dir) -> list[dict]:
    path = run_dir / "metrics.csv"
    return list(csv.DictReader(open(path))) if path.is_file() else []


def test_run_resumes_after_superlink_and_serverapp_are_killed(loopback, tmp_path):
    link_log = loopback.superlink()
    for index in range(2):
        loopback.supernode(index, 2)
    wait_until(lambda: link_log.read_text().count("Activated node_id") >= 2, 120, "two SuperNodes")
    run_config = {"num-rounds": ROUNDS, "local-epochs": 1, "clients-per-round": 2, "min-replies": 2,
                  "output-dir": str(tmp_path / "runs"), "run-name": "crash"}  # fmt: skip
    run_dir = tmp_path / "runs" / "crash"
    first_log = loopback.flwr_run("first", run_config)
    wait_until(lambda: len(metric_rows(run_dir)) >= 2, 300, f"round 2 in metrics.csv\n{first_log.read_text()}")

    loopback.kill("superlink")  # with its SuperExec and ServerApp processes
    loopback.kill("first")  # the CLI streaming the dead run's log
    before = metric_rows(run_dir)
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "report.md").exists()

    loopback.superlink()
    resume_log = loopback.flwr_run("resume", run_config | {"resume": True})
    wait_until(lambda: (run_dir / "report.md").is_file(), 400, f"the resumed run's report\n{resume_log.read_text()}")

    rows = metric_rows(run_dir)
    assert [int(row["round"]) for row in rows] == list(range(1, ROUNDS + 1))
    resumed_at = int(resume_log.read_text().split("resuming crash at round ")[1].split(";")[0])
    assert 2 <= resumed_at <= 3  # the crash came after round 2's row, before or after its checkpoint
    assert rows[: resumed_at - 1] == before[: resumed_at - 1], "rows before the checkpoint changed"
    assert all(int(row["clients"]) == 2 for row in rows)
    assert float(rows[-1]["accuracy"]) > 0.3
