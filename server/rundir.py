"""The run directory ``<output-dir>/<timestamp>-<method>/``: what a run leaves behind.

``config.json`` (resolved run config), ``metrics.csv`` (one row per round, appended as the run
goes, so an interrupted run keeps its history), ``model.pt`` (final weights and masks),
``accuracy.png`` / ``density.png`` and a short ``report.md``.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import torch
from torch import nn

from fedmef.config import RunConfig

FIELDS = [
    "round", "accuracy", "loss", "pre_adjust_accuracy", "pre_adjust_loss", "train_loss", "adjusted", "extruding",
    "clients", "failures", "rejected", "max_norm_mads", "bytes_down", "bytes_up", "dense_bytes", "seconds",
    "export_seconds",
]  # fmt: skip


class RunDirectory:
    def __init__(self, config: RunConfig, layer_names: list[str]):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(config.output_dir).expanduser().resolve()
        path = base / f"{stamp}-{config.method}"
        suffix = 1
        while path.exists():
            path, suffix = base / f"{stamp}-{config.method}-{suffix}", suffix + 1
        path.mkdir(parents=True)
        self.path = path
        self.config = config
        self.density_fields = [f"density/{name}" for name in layer_names]
        # where the code ran from: Flower's unpacked app, a checkout or an install (tests check it)
        resolved = config.as_dict() | {"code-location": str(Path(__file__).resolve().parent.parent)}
        (path / "config.json").write_text(json.dumps(resolved, indent=2) + "\n")
        with open(path / "metrics.csv", "w", newline="") as handle:
            csv.writer(handle).writerow(FIELDS + self.density_fields)
        self.rows: list[dict] = []

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
            f"- client failures: {sum(r['failures'] for r in self.rows)}",
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
