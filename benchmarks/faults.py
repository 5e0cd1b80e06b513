"""Fault-injection benchmark: the same federations with and without faulty clients.

Runs ``benchmarks/conf/faults.toml`` through the accuracy benchmark's resumable runner (``flwr
run`` per federation; ``server/faults.py`` spoils ``fault-fraction`` of each round's replies) and
writes ``benchmarks/results/faults.md``: per seed the final accuracy of both runs, their
difference, and what the server counted (``failures`` = dropouts, ``rejected`` = malformed or
scaled updates caught by ``server/validation.py``, rounds where every reply was rejected):

    .venv/bin/python -m benchmarks.faults [--report-only]
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.accuracy import ROOT, load_benchmark, run_all
from benchmarks.report import load_runs

CONFIG = ROOT / "benchmarks" / "conf" / "faults.toml"
RESULTS = ROOT / "benchmarks" / "results"
CLEAN, FAULTY = "fault-free", "faults-30"
TOLERANCE = 1.0  # points of final accuracy


def table(runs: dict) -> list[str]:
    clean = {seed: rows for seed, rows, _ in runs.get(CLEAN, [])}
    lines = ["| seed | fault-free final acc % | with faults final acc % | difference (points) | dropouts | rejected "
             "| rounds all rejected | within 1 point |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for seed, rows, _ in runs.get(FAULTY, []):
        if seed not in clean:
            continue
        a, b = 100 * float(clean[seed][-1]["accuracy"]), 100 * float(rows[-1]["accuracy"])
        dropouts = sum(int(r["failures"]) for r in rows)
        rejected = sum(int(r["rejected"]) for r in rows)
        empty = sum(1 for r in rows if int(r["clients"]) == 0)
        ok = "yes" if abs(b - a) <= TOLERANCE else "**no**"
        lines.append(f"| {seed} | {a:.2f} | {b:.2f} | {b - a:+.2f} | {dropouts} | {rejected} | {empty} | {ok} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from finished runs")
    args = parser.parse_args(argv)
    bench = load_benchmark(CONFIG)
    if not args.report_only:
        run_all(bench, RESULTS, ROOT / "benchmarks" / "work")
    load = os.getloadavg()
    intro = ("Command: `.venv/bin/python -m benchmarks.faults` "
             f"(load average at report time {load[0]:.2f}). Every run completed (a crash would have stopped the "
             "benchmark); per-run metrics under `results/runs/faults/`.")  # fmt: skip
    lines = [f"# {bench.title}", "", intro, "", *table(load_runs(bench, RESULTS)), ""]
    (RESULTS / "faults.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
