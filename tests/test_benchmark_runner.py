"""The accuracy benchmark end to end: two real 2-round federations, report, then a resumed no-op rerun.

Slow (two ``flwr run`` starts, ~1-3 min on 2 busy cores): each federation has 2 supernodes and
adjusts in round 1 (``adjust-interval=1``, one extrusion round), so the post-adjustment drop is defined
(for fedmef; FedDST's clients cut, so it has none, and its round 1 runs the server's mask vote).
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout

import pytest

from benchmarks import accuracy, metrics

CONFIG = """
name = "tiny"
output = "accuracy"
title = "tiny"
supernodes = 2
seeds = [0]
methods = ["feddst", "fedmef"]
[run-config]
num-rounds = 2
adjust-interval = 1
extrusion-rounds = 1
adjust-end-fraction = 1.0
clients-per-round = 2
local-epochs = 1
backend = "torch"  # FedDST prunes/regrows on the clients: eager only
"""


def test_runner_end_to_end_and_resume(flower_env):
    config = flower_env / "tiny.toml"
    config.write_text(CONFIG)
    results, work = flower_env / "results", flower_env / "work"
    args = [str(config), "--results-dir", str(results), "--work-dir", str(work)]
    log = io.StringIO()
    with redirect_stdout(log):
        assert accuracy.main(args) == 0
    text = log.getvalue()
    assert "(1/2) feddst/seed0" in text and "(2/2) fedmef/seed0" in text
    assert "[1/2 feddst/seed0] round   2/2" in text  # progress lines

    index = json.loads((results / "runs" / "tiny" / "index.json").read_text())
    assert {key: entry["status"] for key, entry in index.items()} == {"feddst/seed0": "done", "fedmef/seed0": "done"}
    assert index["fedmef/seed0"]["overrides"]["method"] == "fedmef"

    rows = list(csv.DictReader(open(results / "accuracy.csv")))
    assert [(r["variant"], r["seed"], r["rounds"]) for r in rows] == [("feddst", "0", "2"), ("fedmef", "0", "2")]
    fedmef_rows = list(csv.DictReader(open(results / "runs" / "tiny" / "fedmef-seed0" / "metrics.csv")))
    assert metrics.adjustment_rounds(fedmef_rows) == [1]  # round 2 = T_end, where f_decay is 0: no cut
    expected = metrics.summarize(fedmef_rows)
    assert float(rows[1]["cut_drop"]) == pytest.approx(expected.cut_drop, abs=1e-4)
    assert float(rows[1]["first_cut_loss_rise"]) == pytest.approx(expected.first_cut_loss_rise, abs=1e-4)
    feddst_rows = list(csv.DictReader(open(results / "runs" / "tiny" / "feddst-seed0" / "metrics.csv")))
    assert metrics.adjustment_rounds(feddst_rows) == [1] and rows[0]["cut_drop"] == "nan"
    assert 0 < int(rows[1]["bytes_up_per_client"]) < 0.25 * int(rows[1]["dense_bytes"])

    report = (results / "accuracy.md").read_text()
    assert "| fedmef | 1 |" in report and "## Targets" in report and "## Each cut" in report
    assert "FedMef upload ≤ 0.25 × dense float32" in report and "see [memory.md]" in report
    for name in ("accuracy-curves.png", "accuracy-drops.png", "accuracy-density.png"):
        assert (results / name).stat().st_size > 0

    # resumable: an interrupted run (status "running") is redone, finished ones are not
    index["fedmef/seed0"]["status"] = "running"
    (results / "runs" / "tiny" / "index.json").write_text(json.dumps(index))
    assert accuracy.pending(accuracy.load_benchmark(config).plan(), index, results / "runs" / "tiny") == [
        "fedmef/seed0"
    ]
    index["fedmef/seed0"]["status"] = "done"
    (results / "runs" / "tiny" / "index.json").write_text(json.dumps(index))
    log = io.StringIO()
    with redirect_stdout(log):
        assert accuracy.main(args) == 0
    assert "2/2 runs done, 0 to run" in log.getvalue() and "(1/2)" not in log.getvalue()
