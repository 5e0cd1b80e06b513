"""The accuracy benchmark's report: table, targets and plots from the finished runs' metrics.

Reads ``<results-dir>/runs/<name>/index.json`` and each run's copied ``metrics.csv``, writes
``<output>.md`` (summary table, per-cut table, first cut per seed, targets), ``<output>.csv`` (one
row per run), ``<output>-curves.png`` (mean accuracy vs round per variant, adjustment rounds
marked), ``<output>-drops.png`` (accuracy drop and test-loss rise of each cut) and
``<output>-density.png`` (per-layer density of the first fedmef variant).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from benchmarks import metrics
from benchmarks.accuracy import Benchmark, is_done, load_state, run_key

KIB = 1024.0


def load_runs(bench: Benchmark, results_dir: Path) -> dict[str, list[tuple[int, list[dict], float]]]:
    """Finished runs per variant label: ``[(seed, rows, wall seconds), ...]`` (variants without runs omitted)."""
    runs_dir = results_dir / "runs" / bench.name
    state = _finished_state(bench, results_dir)
    out: dict[str, list[tuple[int, list[dict], float]]] = {}
    for variant in bench.variants:
        for seed in bench.seeds:
            key = run_key(variant.label, seed)
            if key in state:
                with open(runs_dir / state[key]["metrics"]) as handle:
                    rows = list(csv.DictReader(handle))
                wall = float(state[key].get("wall_seconds", "nan"))
                out.setdefault(variant.label, []).append((seed, rows, wall))
    return out


def _finished_state(bench: Benchmark, results_dir: Path) -> dict[str, dict]:
    runs_dir = results_dir / "runs" / bench.name
    state, plan = load_state(runs_dir / "index.json"), dict(bench.plan())
    return {key: entry for key, entry in state.items() if key in plan and is_done(entry, plan[key], runs_dir)}


def write(bench: Benchmark, results_dir: Path, out=None) -> Path | None:
    finished = load_runs(bench, results_dir)
    runs = {label: [(seed, rows) for seed, rows, _ in seeded] for label, seeded in finished.items()}
    walls = {label: [wall for _, _, wall in seeded] for label, seeded in finished.items()}
    if not runs:
        print(f"[bench] {bench.name}: no finished runs yet, no report")
        return None
    summaries = {label: [metrics.summarize(rows, seed) for seed, rows in seeded] for label, seeded in runs.items()}
    methods = {v.label: v.method for v in bench.variants}
    _write_csv(results_dir / f"{bench.output}.csv", runs, methods)
    memory = _memory(results_dir / "memory.md", bench, [methods[label] for label in runs])
    found = metrics.targets(summaries)
    codes = sorted({entry.get("code", "unrecorded") for entry in _finished_state(bench, results_dir).values()})
    lines = _markdown(bench, runs, summaries, methods, memory, found, walls, codes)
    _plots(bench, results_dir, runs)
    path = results_dir / f"{bench.output}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(_target_lines(found)))
    print(f"[bench] report: {path}")
    return path


def _write_csv(path: Path, runs, methods) -> None:
    fields = ["variant", "method", "seed", "rounds", "final_accuracy", "best_accuracy", "cut_drop", "round_drop",
              "first_cut_drop", "first_cut_loss_rise", "cut_loss_rise", "bytes_up_per_client",
              "bytes_down_per_client", "dense_bytes", "seconds_per_round"]  # fmt: skip
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for label, seeded in runs.items():
            for seed, rows in seeded:
                s = metrics.summarize(rows)
                writer.writerow([label, methods[label], seed, len(rows), f"{s.final_accuracy:.4f}",
                                 f"{s.best_accuracy:.4f}", f"{s.cut_drop:.4f}", f"{s.round_drop:.4f}",
                                 f"{s.first_cut_drop:.4f}", f"{s.first_cut_loss_rise:.4f}", f"{s.cut_loss_rise:.4f}",
                                 round(s.bytes_up), round(s.bytes_down), round(s.dense_bytes),
                                 f"{s.seconds_per_round:.3f}"])  # fmt: skip


def _memory(path: Path, bench: Benchmark, methods: list[str]) -> tuple[list[str], dict[str, list[str]]] | None:
    """Columns of memory.md for the methods the benchmark's ``[memory]`` table maps to its rows."""
    if not path.is_file():
        return None
    spec = dict(bench.memory)
    model = spec.pop("model", None)
    rows_for = {m: [*([model] if model else []), spec.get(m, m)] for m in methods if not spec or m in spec}
    return metrics.memory_columns(path.read_text(), rows_for)


def _markdown(bench, runs, summaries, methods, memory, found, walls, codes) -> list[str]:
    seeds = sorted({seed for seeded in runs.values() for seed, _ in seeded})
    config = ", ".join(f"`{k}={v}`" for k, v in bench.run_config.items() if k != "data-path") or "defaults"
    header = ["variant", "runs", "final acc (%)", "best acc (%)", "cut drop (pts)", "cut loss rise", "round drop (pts)",
              "up KiB/client/round", "down KiB/client/round", "dense KiB", "up / dense", "down / dense",
              "s / round", "min / run"]  # fmt: skip
    if memory:
        where = f"memory.md, {bench.memory['model']}" if "model" in bench.memory else "memory.md"
        header += [f"{h} ({where})" for h in memory[0]]
    lines = [
        f"# {bench.title}", "",
        f"Generated by `python -m benchmarks.accuracy` from {sum(len(s) for s in runs.values())} finished "
        f"federations ({bench.supernodes} supernodes, seeds {seeds}); run config: {config} "
        f"(everything else: `pyproject.toml` defaults). Mean ± sample std over seeds.", "",
        "- **cut drop** / **cut loss rise**: `pre_adjust_accuracy − accuracy` and `loss − pre_adjust_loss` (test "
        "cross-entropy) on adjustment rounds — the same aggregated model evaluated right before and right after "
        "the prune/grow cut (the damage of the cut alone), mean over a run's cuts. n/a for FedDST: its clients cut, "
        "there is no uncut aggregate.",
        "- **round drop**: `accuracy[A−1] − accuracy[A]` — includes round A's training, as in the paper's curves.",
        "- bytes: sparse encoding as sent (values + indices), per participating client per round; dense = float32.",
        f"- code versions (hash of fedmef/, server/, python_client/, export/, pyproject.toml): {', '.join(codes)}",
        "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
    ]  # fmt: skip
    for label, ss in summaries.items():
        up = metrics.mean(s.bytes_up for s in ss)
        down = metrics.mean(s.bytes_down for s in ss)
        dense = metrics.mean(s.dense_bytes for s in ss)
        cells = [
            label, str(len(ss)), metrics.format_pm([s.final_accuracy for s in ss], 100),
            metrics.format_pm([s.best_accuracy for s in ss], 100), metrics.format_pm([s.cut_drop for s in ss], 100),
            metrics.format_pm([s.cut_loss_rise for s in ss], 1, 4), metrics.format_pm([s.round_drop for s in ss], 100),
            f"{up / KIB:.1f}", f"{down / KIB:.1f}", f"{dense / KIB:.1f}", f"{up / dense:.3f}", f"{down / dense:.3f}",
            metrics.format_pm([s.seconds_per_round for s in ss], 1, 2), f"{metrics.mean(walls[label]) / 60:.1f}",
        ]  # fmt: skip
        if memory:
            cells += memory[1].get(methods[label], ["—"] * len(memory[0]))
        lines.append("| " + " | ".join(cells) + " |")
    if memory:
        lines += ["", f"Memory: columns from [memory.md](memory.md), one training step; rows {dict(bench.memory)}."]
    else:
        lines += ["", "Memory: see [memory.md](memory.md) (no matching table when this report was written)."]
    lines += _cut_tables(runs, summaries)
    lines += _bae_table(summaries, methods)
    lines += ["", "## Targets", "", *_target_lines(found), ""]
    lines += [f"![accuracy vs round]({bench.output}-curves.png)", "", f"![drops]({bench.output}-drops.png)", ""]
    if any(methods[label] == "fedmef" for label in runs):
        lines += [f"![density]({bench.output}-density.png)", ""]
    return lines


def _cut_tables(runs, summaries) -> list[str]:
    """Every cut of every variant (mean ± std over seeds), then the first cut seed by seed."""
    cut_runs = {label: seeded for label, seeded in runs.items() if any(metrics.cut_drops(r) for _, r in seeded)}
    if not cut_runs:
        return []
    lines = ["", "## Each cut", "", "Accuracy drop (points) and test-loss rise of the k-th prune/grow cut "
             "(adjustment round in brackets), mean ± std over seeds; one test image is 100/359 = 0.28 points.", "",
             "| variant | cut | accuracy drop (pts) | loss rise |", "|---|---|---|---|"]  # fmt: skip
    for label, seeded in cut_runs.items():
        rounds = metrics.adjustment_rounds(seeded[0][1])
        for k, round_num in enumerate(rounds):
            drops = [100 * metrics.cut_drops(r)[k] for _, r in seeded if len(metrics.cut_drops(r)) > k]
            rises = [metrics.cut_loss_rises(r)[k] for _, r in seeded if len(metrics.cut_loss_rises(r)) > k]
            lines.append(f"| {label} | {k + 1} (round {round_num}) | {metrics.format_pm(drops)} | "
                         f"{metrics.format_pm(rises, 1, 4)} |")  # fmt: skip
    seeds = sorted({s.seed for ss in summaries.values() for s in ss})
    lines += ["", "### The first cut, seed by seed", "",
              "| variant | " + " | ".join(f"seed {seed}: drop (pts) / loss rise" for seed in seeds) + " |",
              "|---|" + "---|" * len(seeds)]  # fmt: skip
    for label in cut_runs:
        by_seed = {s.seed: s for s in summaries[label]}
        cells = [f"{100 * by_seed[seed].first_cut_drop:.2f} / {by_seed[seed].first_cut_loss_rise:.4f}"
                 if seed in by_seed and not math.isnan(by_seed[seed].first_cut_drop) else "n/a"
                 for seed in seeds]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _bae_table(summaries, methods) -> list[str]:
    """Each BaE variant's first-cut test-loss rise against fedmef-no-bae, seed by seed (the sweep's criterion)."""
    if "fedmef-no-bae" not in summaries:
        return []
    reference = {s.seed: s for s in summaries["fedmef-no-bae"]}
    seeds = sorted(reference)
    lines = ["", "## BaE against fedmef-no-bae", "",
             "Reduction of the first cut's test-loss rise, `1 − rise / rise(fedmef-no-bae)`, per seed (positive: BaE "
             "helped); final accuracy against fedmef-no-bae's.", "",
             "| variant | " + " | ".join(f"seed {seed}" for seed in seeds) + " | worst | mean | final acc Δ (pts) |",
             "|---|" + "---|" * (len(seeds) + 3)]  # fmt: skip
    base_final = metrics.mean(s.final_accuracy for s in reference.values())
    for label, ss in summaries.items():
        if methods[label] != "fedmef":  # BaE on vs off, nothing else changed
            continue
        by_seed = {s.seed: s for s in ss}
        cuts = [1 - by_seed[seed].first_cut_loss_rise / reference[seed].first_cut_loss_rise
                if seed in by_seed and reference[seed].first_cut_loss_rise > 0 else float("nan") for seed in seeds]
        known = [c for c in cuts if not math.isnan(c)]
        worst, average = (f"{100 * min(known):.0f} %", f"{100 * metrics.mean(known):.0f} %") if known else ("n/a",) * 2
        final = 100 * (metrics.mean(s.final_accuracy for s in ss) - base_final)
        lines.append(f"| {label} | " + " | ".join("—" if math.isnan(c) else f"{100 * c:.0f} %" for c in cuts)
                     + f" | {worst} | {average} | {final:+.2f} |")  # fmt: skip
    return lines


def _target_lines(found: list[metrics.Target]) -> list[str]:
    verdict = {True: "MET", False: "NOT MET", None: "n/a"}
    return [f"- **{verdict[t.met]}** — {t.name}: {t.detail}" for t in found] or ["- (no target applies)"]


def _plots(bench, results_dir: Path, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    adjusted: set[int] = set()
    for label, seeded in runs.items():
        rows = [r for _, r in seeded]
        rounds, acc = metrics.mean_curve(rows)
        (line,) = ax.plot(rounds, [100 * a for a in acc], label=label, linewidth=1.2)
        marks = [t for t in metrics.adjustment_rounds(rows[0]) if t in rounds]
        adjusted.update(marks)
        ax.plot(marks, [100 * acc[rounds.index(t)] for t in marks], "v", color=line.get_color())
        if marks:  # the same model right before the cut
            _, pre = metrics.mean_curve(rows, "pre_adjust_accuracy")
            ax.plot(marks, [100 * pre[rounds.index(t)] for t in marks], "o", mfc="none", color=line.get_color())
    for t in sorted(adjusted):
        ax.axvline(t, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="round", ylabel="test accuracy (%), mean over seeds",
           title=f"{bench.title}\n(dotted: prune-grow rounds; ○ before the cut, ▼ after)")  # fmt: skip
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(results_dir / f"{bench.output}-curves.png", dpi=120)
    plt.close(fig)

    labels = [label for label, seeded in runs.items() if any(metrics.cut_drops(r) for _, r in seeded)]
    if labels:
        cuts = max(len(metrics.cut_drops(r)) for label in labels for _, r in runs[label])
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        width = 0.8 / cuts
        panels = [("accuracy drop (points)", metrics.cut_drops, 100), ("test-loss rise", metrics.cut_loss_rises, 1)]
        for ax, (name, fn, scale) in zip(axes, panels, strict=True):
            for k in range(cuts):
                stats = [metrics.mean_std([scale * fn(r)[k] for _, r in runs[label] if len(fn(r)) > k])
                         for label in labels]  # fmt: skip
                xs = [i + (k - (cuts - 1) / 2) * width for i in range(len(labels))]
                ax.bar(xs, [m for m, _ in stats], width, yerr=[0 if math.isnan(sd) else sd for _, sd in stats],
                       label=f"cut {k + 1}")  # fmt: skip
            ax.set_xticks(range(len(labels)), labels, rotation=25, fontsize="small")
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set(ylabel=name, title=f"{name} of each prune/grow cut (mean ± std over seeds)")
            ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(results_dir / f"{bench.output}-drops.png", dpi=120)
        plt.close(fig)

    fedmef = next((label for label in runs if label == "fedmef"), None)
    if fedmef:
        rows = [r for _, r in runs[fedmef]]
        fig, ax = plt.subplots(figsize=(8, 4))
        styles = ["-", "--", "-.", ":"]
        for i, field in enumerate(k for k in rows[0][0] if k.startswith("density/")):
            rounds, values = metrics.mean_curve(rows, field)
            label = f"{field.split('/', 1)[1]} ({values[-1]:.3f})"
            ax.plot(rounds, values, styles[i % len(styles)], label=label, linewidth=2)
        for t in metrics.adjustment_rounds(rows[0]):
            ax.axvline(t, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set(xlabel="round", ylabel="density", title=f"{fedmef}: per-layer density (ERK), mean over seeds")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(results_dir / f"{bench.output}-density.png", dpi=120)
        plt.close(fig)
