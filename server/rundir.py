"""The run directory ``<output-dir>/<run-name>/`` (default name ``<timestamp>-<method>``): what a run leaves behind.

``config.json`` (resolved run config), ``metrics.csv`` (one row per round, appended as the run
goes, so an interrupted run keeps its history), ``checkpoint.pt`` (``checkpoint.py``, after every
round), ``model.pt`` (final weights and masks), ``accuracy.png`` / ``density.png`` and a short
``report.md`` (written last: its presence means the run finished).

An existing directory is only reopened with ``resume = true``, and only for the run config it was
started with (``RESUMABLE`` keys may change); ``restore`` then rewrites ``metrics.csv`` from the
checkpoint's rows, dropping a row logged after the last checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from fedmef.config import RunConfig

FIELDS = [
    "round", "accuracy", "loss", "pre_adjust_accuracy", "pre_adjust_loss", "train_loss", "adjusted", "extruding",
    "clients", "failures", "rejected", "model_kept", "max_norm_mads", "bytes_down", "bytes_up", "dense_bytes",
    "seconds", "export_seconds",
]  # fmt: skip


#: run-config keys a resumed run may change; any other difference to config.json is an error
RESUMABLE = {"resume", "round-timeout", "min-replies", "output-dir", "code-location"}


class RunDirectory:
    def __init__(self, config: RunConfig, layer_names: list[str]):
        self.config = config
        self.density_fields = [f"density/{name}" for name in layer_names]
        self.rows: list[dict] = []
        # where the code ran from: Flower's unpacked app, a checkout or an install (tests check it)
        resolved = config.as_dict() | {"code-location": str(Path(__file__).resolve().parent.parent)}
        self.path = run_path(config)
        self.resumed = self.path.exists()
        if self.resumed:
            if not config.resume:
                raise FileExistsError(f"run directory {self.path} exists: set resume=true to continue that run "
                                      "or choose another run-name")  # fmt: skip
            check_resumable(self.path / "config.json", resolved)
            return
        self.path.mkdir(parents=True)
        (self.path / "config.json").write_text(json.dumps(resolved, indent=2) + "\n")
        self.restore([])

    @property
    def finished(self) -> bool:
        return (self.path / "report.md").is_file()

    def final_row(self) -> dict:
        """The last round's metrics: from memory, or from ``metrics.csv`` for a run finished earlier."""
        if self.rows:
            return self.rows[-1]
        with open(self.path / "metrics.csv", newline="") as handle:
            return list(csv.DictReader(handle))[-1]

    def restore(self, rows: list[dict]) -> None:
        """Start over from ``rows`` (a checkpoint's): ``metrics.csv`` holds exactly them."""
        self.rows = list(rows)
        temporary = self.path / ".metrics.csv.tmp"
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS + self.density_fields)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(temporary, self.path / "metrics.csv")

    def log(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.path / "metrics.csv", "a", newline="") as handle:
            csv.DictWriter(handle, FIELDS + self.density_fields).writerow(row)

    def finish(self, model: nn.Module, client_evaluation: dict[str, float]) -> None:
        torch.save(model.state_dict(), self.path / "model.pt")
        self._plot()
        self._report(client_evaluation)

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rounds = [r["round"] for r in self.rows]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(rounds, [100 * r["accuracy"] for r in self.rows], marker=".", label=self.config.method)
        for r in self.rows:
            if r["adjusted"]:
                ax.axvline(r["round"], color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="round", ylabel="test accuracy (%)", title="accuracy (dotted: prune/grow rounds)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.path / "accuracy.png", dpi=120)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(7, 4))
        for field in self.density_fields:
            ax.plot(rounds, [r[field] for r in self.rows], label=field.split("/", 1)[1])
        ax.set(xlabel="round", ylabel="density", title="per-layer density")
        ax.legend(fontsize="small", ncol=2)
        fig.tight_layout()
        fig.savefig(self.path / "density.png", dpi=120)
        plt.close(fig)

    def _report(self, client_evaluation: dict[str, float]) -> None:
        last, best = self.rows[-1], max(self.rows, key=lambda r: r["accuracy"])
        rounds = len(self.rows)
        seconds = sum(r["seconds"] for r in self.rows)
        up = sum(r["bytes_up"] for r in self.rows) / max(1, sum(r["clients"] for r in self.rows))
        dense = self.rows[-1]["dense_bytes"]
        lines = [
            f"# FedMef run: {self.config.method}",
            "",
            f"- model `{self.config.model}` on `{self.config.dataset}`, density {self.config.density}, "
            f"backend `{self.config.backend}`, {rounds} rounds",
            f"- final test accuracy **{100 * last['accuracy']:.2f} %**, best {100 * best['accuracy']:.2f} % "
            f"(round {best['round']})",
            f"- wall time {seconds:.1f} s ({seconds / rounds:.2f} s per round)",
            f"- upload per client per round {up / 1024:.1f} KiB vs {dense / 1024:.1f} KiB dense float32 "
            f"({up / dense:.3f}x)",
            f"- prune/grow rounds: {[r['round'] for r in self.rows if r['adjusted']] or 'none'}",
            f"- client failures (error or no reply): {sum(r['failures'] for r in self.rows)}",
            f"- rounds that kept the previous model (fewer than min-replies = {self.config.min_replies} valid "
            f"updates): {[r['round'] for r in self.rows if r['model_kept']] or 'none'}",
            f"- rejected updates (server/validation.py): {self._rejected_line()}",
            f"- federated validation accuracy of the final model: {self._client_line(client_evaluation)}",
            "",
            "![accuracy](accuracy.png)",
            "",
            "![density](density.png)",
            "",
        ]
        (self.path / "report.md").write_text("\n".join(lines))

    def _rejected_line(self) -> str:
        rejected = sum(r["rejected"] for r in self.rows)
        kept = [r["round"] for r in self.rows if r["rejected"] and not r["clients"]]
        return f"{rejected}" + (f"; every reply rejected, previous model kept, in rounds {kept}" if kept else "")

    @staticmethod
    def _client_line(evaluation: dict[str, float]) -> str:
        if not evaluation.get("clients"):
            return "no client answered"
        clients, samples = evaluation["clients"], evaluation["examples"]
        return f"{100 * evaluation['accuracy']:.2f} % ({clients} clients, {samples} samples)"


def run_path(config: RunConfig) -> Path:
    base = Path(config.output_dir).expanduser().resolve()
    if config.run_name:
        return base / config.run_name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, suffix = base / f"{stamp}-{config.method}", 1
    while path.exists():
        path, suffix = base / f"{stamp}-{config.method}-{suffix}", suffix + 1
    return path


def check_resumable(saved_config: Path, resolved: dict) -> None:
    """Fail unless the run config equals the one the run started with, but for ``RESUMABLE`` keys."""
    if not saved_config.is_file():
        raise FileExistsError(f"{saved_config.parent} is not a run directory (no config.json): choose another "
                              "run-name")  # fmt: skip
    started = json.loads(saved_config.read_text())
    changed = sorted(key for key in started.keys() | resolved.keys()
                     if key not in RESUMABLE and started.get(key) != resolved.get(key))  # fmt: skip
    if changed:
        details = ", ".join(f"{key}: {started.get(key)!r} -> {resolved.get(key)!r}" for key in changed)
        raise ValueError(
            f"cannot resume {saved_config.parent}: the run config differs from the one it was started "
            f"with ({details}); only {sorted(RESUMABLE - {'code-location'})} may change"
        )
