"""Pure metric functions for the accuracy benchmark: one run's ``metrics.csv`` rows in, numbers out.

Rows are dicts as ``csv.DictReader`` reads a run directory's ``metrics.csv`` (strings) or as the
server logs them (numbers); every function converts with ``float``. Accuracies are fractions.

* post-adjustment drop: ``pre_adjust_accuracy - accuracy`` on adjustment rounds, the damage of the
  prune/grow cut alone (both evaluated on the same aggregated model, right before and after), and
  the test-loss rise ``loss - pre_adjust_loss`` of the same cut (finer than accuracy on a small
  test set); the round-to-round drop ``accuracy[A-1] - accuracy[A]`` also includes round A's
  training and is what the paper's curves show. FedDST cuts on the clients: it has no uncut
  model, so its cut columns are NaN.
* bytes per client per round: ``bytes_up`` / ``bytes_down`` are totals over a round's clients
  (download counts every sampled client, upload only those that replied).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Row = Mapping[str, object]


def _f(value: object) -> float:
    return float(value) if value not in ("", None) else float("nan")


def adjustment_rounds(rows: Sequence[Row]) -> list[int]:
    return [int(_f(r["round"])) for r in rows if int(_f(r["adjusted"]))]


def cut_drops(rows: Sequence[Row]) -> list[float]:
    """``pre_adjust_accuracy - accuracy`` on each adjustment round (positive: the cut hurt)."""
    return [_f(r["pre_adjust_accuracy"]) - _f(r["accuracy"]) for r in rows if int(_f(r["adjusted"]))]


def cut_loss_rises(rows: Sequence[Row]) -> list[float]:
    """``loss - pre_adjust_loss`` (test cross-entropy) on each adjustment round (positive: the cut hurt)."""
    return [_f(r["loss"]) - _f(r.get("pre_adjust_loss")) for r in rows if int(_f(r["adjusted"]))]


def round_drops(rows: Sequence[Row]) -> list[float]:
    """``accuracy[A-1] - accuracy[A]`` on each adjustment round A that has a previous round."""
    accuracy = {int(_f(r["round"])): _f(r["accuracy"]) for r in rows}
    return [accuracy[a - 1] - accuracy[a] for a in adjustment_rounds(rows) if a - 1 in accuracy]


def bytes_per_client(rows: Sequence[Row]) -> tuple[float, float]:
    """Mean (upload, download) bytes per client per round over the whole run."""
    replied = sum(_f(r["clients"]) for r in rows)
    # every sampled client was sent the state: replied, failed, or (runs since validation) rejected
    sampled = sum(_f(r["clients"]) + _f(r["failures"]) + _f(r.get("rejected", 0)) for r in rows)
    up = sum(_f(r["bytes_up"]) for r in rows) / replied if replied else float("nan")
    down = sum(_f(r["bytes_down"]) for r in rows) / sampled if sampled else float("nan")
    return up, down


def mean(values: Iterable[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value), ignoring NaN."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    if len(values) == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def format_pm(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` of ``values * scale``; ``"n/a"`` when there is no value."""
    m, s = mean_std([v * scale for v in values])
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


@dataclass(frozen=True)
class RunSummary:
    final_accuracy: float
    best_accuracy: float
    cut_drop: float  # mean over the run's adjustment rounds (NaN when none)
    round_drop: float
    bytes_up: float  # per client per round
    bytes_down: float
    dense_bytes: float
    seconds_per_round: float
    first_cut_drop: float = float("nan")  # the first adjustment's accuracy drop
    first_cut_loss_rise: float = float("nan")
    cut_loss_rise: float = float("nan")  # mean over the run's adjustment rounds
    seed: int | None = None


def summarize(rows: Sequence[Row], seed: int | None = None) -> RunSummary:
    up, down = bytes_per_client(rows)
    drops, rises = cut_drops(rows), cut_loss_rises(rows)
    return RunSummary(
        final_accuracy=_f(rows[-1]["accuracy"]), best_accuracy=max(_f(r["accuracy"]) for r in rows),
        cut_drop=mean(drops), round_drop=mean(round_drops(rows)), bytes_up=up, bytes_down=down,
        dense_bytes=_f(rows[-1]["dense_bytes"]), seconds_per_round=mean(_f(r["seconds"]) for r in rows),
        first_cut_drop=drops[0] if drops else float("nan"), first_cut_loss_rise=rises[0] if rises else float("nan"),
        cut_loss_rise=mean(rises), seed=seed,
    )  # fmt: skip


def mean_curve(runs: Sequence[Sequence[Row]], field: str = "accuracy") -> tuple[list[int], list[float]]:
    """Per-round mean of ``field`` over runs, on the rounds every run has."""
    common = set.intersection(*({int(_f(r["round"])) for r in rows} for rows in runs)) if runs else set()
    rounds = sorted(common)
    by_round = [{int(_f(r["round"])): _f(r[field]) for r in rows} for rows in runs]
    return rounds, [mean(values[t] for values in by_round) for t in rounds]


@dataclass(frozen=True)
class Target:
    name: str
    detail: str
    met: bool | None  # None: a method the target needs was not run


def targets(summaries: Mapping[str, Sequence[RunSummary]], max_first_cut_drop: float = 0.03,
            min_bae_reduction: float = 0.30) -> list[Target]:  # fmt: skip
    """The issue's targets, from per-variant run summaries (keys are variant labels = methods).

    Per-seed targets pair runs by ``RunSummary.seed``: FedMef's first cut costs at most
    ``max_first_cut_drop`` accuracy in every seed, and BaE cuts the first cut's test-loss rise by at
    least ``min_bae_reduction`` against ``fedmef-no-bae`` in every seed."""

    def avg(label: str, attr: str) -> float:
        return mean(getattr(s, attr) for s in summaries.get(label, ()))

    have = set(summaries)
    out = []
    if {"fedmef", "feddst"} <= have:
        a, b = 100 * avg("fedmef", "final_accuracy"), 100 * avg("feddst", "final_accuracy")
        caveat = " (FedDST stayed near chance: the comparison says nothing about BaE/SAP)" if b < 20 else ""
        out.append(Target("FedMef ≥ FedDST + 1 point (final accuracy)", f"{a:.2f} vs {b:.2f} + 1{caveat}", a >= b + 1))
    if {"fedmef", "fedavg"} <= have:
        a, b = 100 * avg("fedmef", "final_accuracy"), 100 * avg("fedavg", "final_accuracy")
        out.append(Target("FedMef ≥ dense FedAvg − 2 points (final accuracy)", f"{a:.2f} vs {b:.2f} − 2", a >= b - 2))
    if "fedmef" in have:
        drops = [s.first_cut_drop for s in summaries["fedmef"] if not math.isnan(s.first_cut_drop)]
        met = all(d <= max_first_cut_drop + 1e-12 for d in drops) if drops else None
        detail = ", ".join(f"seed {s.seed}: {100 * s.first_cut_drop:.2f}" for s in summaries["fedmef"]) + " points"
        out.append(Target(f"FedMef's first cut costs ≤ {100 * max_first_cut_drop:.0f} points in every seed", detail,
                          met))  # fmt: skip
    if {"fedmef", "fedmef-no-bae"} <= have:
        without = {s.seed: s.first_cut_loss_rise for s in summaries["fedmef-no-bae"]}
        pairs = [(s.seed, s.first_cut_loss_rise, without[s.seed]) for s in summaries["fedmef"] if s.seed in without]
        pairs = [(seed, a, b) for seed, a, b in pairs if not (math.isnan(a) or math.isnan(b))]
        reductions = [(seed, 1 - a / b if b > 0 else float("nan")) for seed, a, b in pairs]
        met = all(r >= min_bae_reduction - 1e-9 for _, r in reductions) if reductions else None
        detail = "; ".join(f"seed {seed}: {a:.4f} vs {b:.4f} ({100 * r:.0f} % smaller)"
                           for (seed, a, b), (_, r) in zip(pairs, reductions, strict=True)) or "no cut"  # fmt: skip
        out.append(Target(f"BaE cuts the first cut's test-loss rise by ≥ {100 * min_bae_reduction:.0f} % vs "
                          "fedmef-no-bae in every seed", detail, met))  # fmt: skip
    if "fedmef" in have:
        ratio = avg("fedmef", "bytes_up") / avg("fedmef", "dense_bytes")
        out.append(Target("FedMef upload ≤ 0.25 × dense float32", f"{ratio:.3f}×", ratio <= 0.25))
    return out


def memory_columns(
    markdown: str, rows_for: Mapping[str, Sequence[str]], max_columns: int = 2
) -> tuple[list[str], dict[str, list[str]]] | None:
    """Memory cells per method from the first Markdown table in ``markdown`` that has rows for them.

    ``rows_for[method]`` lists cells a row must contain to stand for ``method`` (e.g. ``["cnn",
    "dense"]``). Takes the first ``max_columns`` other columns whose header mentions memory, peak,
    MiB or MB; returns ``(headers, {method: cells})``, or None when no table matches.
    """
    words = {"memory", "peak", "mib", "mb"}
    table: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.strip().startswith("|"):
            table.append([cell.strip().strip("`*").strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(table) > 2:
            header, body = table[0], table[2:]
            found = {}
            for method, needed in rows_for.items():
                row = next((r for r in body if all(cell in r for cell in needed)), None)
                if row is not None:
                    found[method] = row
            needed_cells = {cell for cells in rows_for.values() for cell in cells}
            keys = {i for row in found.values() for i, cell in enumerate(row) if cell in needed_cells}
            named = [i for i, h in enumerate(header) if words & set(re.findall(r"[a-z]+", h.lower()))]
            columns = [i for i in named if i not in keys][:max_columns]
            if found and columns:
                cells = {m: [row[i] if i < len(row) else "" for i in columns] for m, row in found.items()}
                return [header[i] for i in columns], cells
        table = []
    return None
