"""Accuracy benchmark: every method of a TOML benchmark config, several seeds, real Flower runs.

``python -m benchmarks.accuracy [benchmarks/conf/digits.toml] [--data-path DIR]`` runs each
(variant, seed) of the config as one local federation through ``server.launch.run`` and
then writes ``<results-dir>/<output>.md``, ``.csv`` and plots (``report.py``).

Resumable: ``<results-dir>/runs/<name>/index.json`` records each run as ``running`` or ``done``
with the overrides it ran with, and a finished run's ``metrics.csv`` / ``config.json`` are copied
next to it. A rerun skips runs that are ``done`` with the same overrides; a ``running`` entry (an
interrupted run) is redone. ``--report-only`` rebuilds the report from the copied metrics.

Config keys: ``name``, ``output`` (file prefix), ``title``, ``supernodes``, ``seeds``, ``methods``
(variants labelled by their method), ``[run-config]`` (overrides common to every run) and
optional ``[variants.<label>]`` tables (``method`` plus overrides of their own); optional
``[memory]`` (``model`` and ``method = "row name"``: which rows of ``results/memory.md`` to show).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server import launch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).resolve().parent / "conf" / "digits.toml"


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str
    output: str
    title: str
    supernodes: int
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    run_config: Mapping[str, Any]
    memory: Mapping[str, str] = field(default_factory=dict)  # [memory]: model and method -> row of memory.md

    def plan(self) -> list[tuple[str, dict[str, Any]]]:
        """``(key, overrides)`` of every run, seed-major (every variant once before any second seed)."""
        runs = []
        for seed in self.seeds:
            for variant in self.variants:
                overrides = dict(self.run_config) | dict(variant.overrides) | {"method": variant.method, "seed": seed}
                runs.append((run_key(variant.label, seed), overrides))
        return runs


def run_key(label: str, seed: int) -> str:
    return f"{label}/seed{seed}"


def code_fingerprint(root: Path = ROOT) -> str:
    """Short hash of the code a federation runs (Flower packages the working tree at each run)."""
    digest = hashlib.sha256()
    for folder in ("fedmef", "server", "python_client", "export"):
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    digest.update((root / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:12]


def load_benchmark(path: Path, data_path: str | None = None, extra: Mapping[str, Any] | None = None) -> Benchmark:
    spec = tomllib.loads(Path(path).read_text())
    run_config = dict(spec.get("run-config", {})) | dict(extra or {})
    if data_path:
        run_config["data-path"] = str(Path(data_path).expanduser().resolve())
    variants = [Variant(method, method) for method in spec.get("methods", [])]
    for label, table in spec.get("variants", {}).items():
        table = dict(table)
        variants.append(Variant(label, table.pop("method"), table))
    if not variants:
        raise ValueError(f"{path}: no methods or variants")
    return Benchmark(
        name=spec["name"], output=spec.get("output", f"accuracy-{spec['name']}"), title=spec.get("title", spec["name"]),
        supernodes=int(spec.get("supernodes", 10)), seeds=tuple(spec.get("seeds", [0])), variants=tuple(variants),
        run_config=run_config, memory=dict(spec.get("memory", {})),
    )  # fmt: skip


# --- resumable state: index.json maps run key -> {"status", "overrides", ...} -------------------


def load_state(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # atomic: an interrupt never leaves half an index


def is_done(entry: Mapping[str, Any] | None, overrides: Mapping[str, Any], runs_dir: Path) -> bool:
    """A run counts as done only if it finished with these overrides and its metrics were kept."""
    return (
        entry is not None and entry.get("status") == "done" and entry.get("overrides") == dict(overrides)
        and (runs_dir / entry.get("metrics", "")).is_file()
    )  # fmt: skip


def pending(plan: list[tuple[str, dict[str, Any]]], state: Mapping[str, Any], runs_dir: Path) -> list[str]:
    return [key for key, overrides in plan if not is_done(state.get(key), overrides, runs_dir)]


# --- running ------------------------------------------------------------------------------------


class Progress:
    """Stream for ``launch.run``: everything to a log file, round lines condensed to stdout."""

    def __init__(self, log: Path, prefix: str, out=None):
        self.handle, self.prefix, self.out, self.partial = open(log, "w"), prefix, out or sys.stdout, ""

    def write(self, text: str) -> None:
        self.handle.write(text)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if "[fedmef] round" in line or "FAILED" in line:
                self.out.write(f"{self.prefix} {line.split('[fedmef] ', 1)[-1]}\n")

    def flush(self) -> None:
        self.handle.flush()
        self.out.flush()

    def close(self) -> None:
        self.handle.close()


def run_all(bench: Benchmark, results_dir: Path, work_dir: Path, out=None) -> dict[str, dict[str, Any]]:
    out = out or sys.stdout
    runs_dir = results_dir / "runs" / bench.name
    index = runs_dir / "index.json"
    state = load_state(index)
    plan = bench.plan()
    todo = pending(plan, state, runs_dir)
    print(f"[bench] {bench.name}: {len(plan) - len(todo)}/{len(plan)} runs done, {len(todo)} to run", file=out)
    launch.stop_local_superlink(launch.flwr_home())  # one left behind by an interrupted run
    started = time.perf_counter()
    for number, (key, overrides) in enumerate(plan, 1):
        if key not in todo:
            continue
        done_now = todo.index(key)
        if done_now:
            eta = (time.perf_counter() - started) / done_now * (len(todo) - done_now)
            print(f"[bench] estimated time left for this batch: {eta / 60:.1f} min", file=out)
        print(f"[bench] ({number}/{len(plan)}) {key}", file=out, flush=True)
        state[key] = {
            "status": "running", "overrides": overrides, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "code": code_fingerprint(),
        }  # fmt: skip
        save_state(index, state)
        log_dir = work_dir / bench.name / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(log_dir / f"{key.replace('/', '-')}.log", f"[{number}/{len(plan)} {key}]", out)
        output_dir = (work_dir / bench.name / "runs").resolve()
        pairs = [f"{k}={v}" for k, v in overrides.items()] + [f"output-dir={output_dir}"]
        tick = time.perf_counter()
        try:
            run_dir = launch.run(ROOT, bench.supernodes, pairs, stream=progress)
        finally:
            progress.close()
        keep = runs_dir / key.replace("/", "-")
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.csv", "config.json", "report.md"):
            shutil.copy2(run_dir / name, keep / name)
        state[key] |= {
            "status": "done", "metrics": str((keep / "metrics.csv").relative_to(runs_dir)),
            "run_dir": str(run_dir), "wall_seconds": round(time.perf_counter() - tick, 1),
        }  # fmt: skip
        save_state(index, state)
        print(f"[bench] {key} done in {state[key]['wall_seconds']:.0f} s ({run_dir})", file=out, flush=True)
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG, help="benchmark TOML")
    parser.add_argument("--data-path", help="data set directory (cifar10: cifar-10-batches-py)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "work", help="run directories, logs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra run-config override")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from finished runs")
    args = parser.parse_args(argv)
    extra = tomllib.loads("\n".join(launch.toml_pair(pair).replace("=", " = ", 1) for pair in args.set))
    bench = load_benchmark(args.config, args.data_path, extra)
    from benchmarks import report

    if not args.report_only:
        try:
            run_all(bench, args.results_dir, args.work_dir)
        except (RuntimeError, ValueError) as error:
            print(f"[bench] FAILED: {error}; rerun the same command to resume", file=sys.stderr)
            report.write(bench, args.results_dir)
            return 1
    report.write(bench, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
