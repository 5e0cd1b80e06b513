"""Fuzzing benchmark: every property of ``tests/fuzz_strategies.py`` with many examples each.

The CI test (``tests/test_fuzz.py``) runs the same properties with 200 examples; this runs
10,000 or more, counts the examples that break a property instead of stopping at the first, and
writes a table (property, examples, failures, seconds) to ``benchmarks/results/fuzz.md``:

    .venv/bin/python -m benchmarks.fuzz [--examples 10000] [--seed 0] [--out benchmarks/results/fuzz.md]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz_strategies import PROPERTIES

RESULTS = Path(__file__).resolve().parent / "results"


def run_property(strategy, check, examples: int, seed: int) -> tuple[int, list[str], float]:
    """(examples run, one line per failing example, seconds): generation only, no shrinking."""
    ran, failures = [0], []

    @hypothesis.seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def run(drawn):
        ran[0] += 1
        try:
            check(drawn)
        except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
            failures.append(f"{type(error).__name__}: {str(error)[:200]}")

    start = time.perf_counter()
    with warnings.catch_warnings():  # numpy's cast warnings on junk inputs, thousands of them
        warnings.simplefilter("ignore", RuntimeWarning)
        run()
    return ran[0], failures, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples per property")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz.md")
    args = parser.parse_args(argv)
    rows, broken = [], {}
    for name, (strategy, check) in PROPERTIES.items():
        examples, failures, seconds = run_property(strategy, check, args.examples, args.seed)
        rows.append(f"| {name} | {examples} | {len(failures)} | {seconds:.1f} |")
        if failures:
            broken[name] = sorted(set(failures))[:5]
        print(rows[-1], flush=True)
    command = "python -m benchmarks.fuzz" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    lines = [
        "# Fuzzing: the update validator and the parsers of wire data",
        "",
        f"`{command}` (hypothesis {hypothesis.__version__}, Python {platform.python_version()}, seed {args.seed};",
        "generation only, no shrinking; numpy's RuntimeWarnings on junk casts silenced). Properties and",
        "strategies: `tests/fuzz_strategies.py`, the same ones `tests/test_fuzz.py` runs in CI with 200 examples",
        "each. A failure is an example that breaks the property: an exception other than the documented ones,",
        "an honest reply rejected or a corrupted one accepted.",
        "",
        "| property | examples | failures | seconds |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    for name, failures in broken.items():
        lines += [f"Failures of {name}:", "", *[f"- `{f}`" for f in failures], ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
