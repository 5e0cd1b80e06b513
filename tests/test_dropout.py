"""A SuperNode killed mid-run on loopback: the rounds complete with the remaining replies.

Three SuperNodes train a 3-round federation with ``min-replies = 2``. Once round 1's row is in
``metrics.csv`` one SuperNode is killed (SIGKILL, with its ClientApp process) while round 2 goes
out. The SuperLink replaces its reply by NODE_UNAVAILABLE once its heartbeats stop (Flower: at
most 2 x 30 s after the last one), so round 2 ends well inside round-timeout with two updates, the
missing node logged by id, and round 3 and the report follow.
"""

from __future__ import annotations

import re

from .flower_support import wait_until
from .test_resume import metric_rows

ROUND_TIMEOUT = 300


def test_round_completes_without_a_killed_supernode(loopback, tmp_path):
    link_log = loopback.superlink()
    node_logs = [loopback.supernode(index, 3) for index in range(3)]
    wait_until(lambda: link_log.read_text().count("Activated node_id") >= 3, 120, "three SuperNodes")
    run_config = {"num-rounds": 3, "local-epochs": 1, "clients-per-round": 3, "min-replies": 2,
                  "round-timeout": float(ROUND_TIMEOUT), "output-dir": str(tmp_path / "runs"),
                  "run-name": "dropout"}  # fmt: skip
    run_dir = tmp_path / "runs" / "dropout"
    log = loopback.flwr_run("run", run_config)
    wait_until(lambda: len(metric_rows(run_dir)) >= 1, 300, f"round 1 in metrics.csv\n{log.read_text()}")
    loopback.kill("supernode2")
    wait_until(lambda: (run_dir / "report.md").is_file(), 600, f"the run's report\n{log.read_text()}")

    rows = metric_rows(run_dir)
    assert [int(row["clients"]) for row in rows] == [3, 2, 2]
    assert int(rows[1]["failures"]) == 1 and not any(int(row["model_kept"]) for row in rows)
    assert float(rows[1]["seconds"]) < ROUND_TIMEOUT / 2, "round 2 waited for the round timeout"
    text = log.read_text()
    missing = re.findall(r"round 2: no update from node (\d+): NODE_UNAVAILABLE", text)
    assert len(missing) == 1, text
    killed = node_logs[2].read_text()
    assert missing[0] in killed, "the logged node is not the killed SuperNode"
    assert f"node {missing[0]}" not in text.split("round   2/3")[1], "the killed node was sampled again"
    assert "federated validation accuracy" in text and "over 2 clients" in text
