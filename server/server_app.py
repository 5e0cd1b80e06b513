"""Flower ServerApp: one FedMef round is sample -> send -> train -> aggregate -> adjust -> evaluate.

The server owns the global sparse model and the schedule (``schedule.py``). Each round it sends
the sparse state, the marked set (extrusion rounds) and the growth counts (adjustment rounds);
after aggregating the clients' sparse updates it prunes/grows on adjustment rounds, evaluates
on the central test set and appends a row to the run directory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedmef import protocol
from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.sparsity import adjustment_counts, layer_densities, prune_and_grow
from fedmef.task import initial_model, tensors, test_set
from fedmef.training import evaluate

from .aggregation import growth_scores, weighted_average
from .artifacts import RoundExporter
from .rundir import RunDirectory
from .schedule import RoundPhase, local_plan, round_phase

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = RunConfig.from_run_config(context.run_config)
    Federation(grid, config).run()


def to_record(arrays: protocol.Arrays) -> ArrayRecord:
    return ArrayRecord(array_dict={key: Array(np.ascontiguousarray(value)) for key, value in arrays.items()})


class Federation:
    def __init__(self, grid: Grid, config: RunConfig):
        self.grid, self.config = grid, config
        self.model = initial_model(config)
        self.layers = prunable_layers(self.model)
        self.test_x, self.test_y = tensors(test_set(config))
        self.rundir = RunDirectory(config, list(self.layers))
        self.dense_bytes = 4 * sum(p.numel() for p in self.model.parameters())
        cache = Path(config.output_dir).expanduser().resolve() / "export-cache"
        self.exporter = RoundExporter(config, cache) if config.backend != "torch" else None

    def run(self) -> None:
        print(f"[fedmef] {self.config.method} on {self.config.dataset}: run directory {self.rundir.path}", flush=True)
        for round_num in range(1, self.config.num_rounds + 1):
            self.round(round_phase(self.config, round_num))
        self.rundir.finish(self.model, self.evaluate_on_clients())
        final = self.rundir.rows[-1]
        print(
            f"[fedmef] final test accuracy {100 * final['accuracy']:.2f} % | run directory {self.rundir.path}",
            flush=True,
        )

    def sample(self, round_num: int) -> list[int]:
        nodes = sorted(self.grid.get_node_ids())
        count = min(self.config.clients_per_round, len(nodes))
        rng = np.random.default_rng(self.config.seed * 7919 + round_num)
        return [nodes[i] for i in rng.choice(len(nodes), size=count, replace=False)]  # ids exceed int64

    def round(self, phase: RoundPhase) -> None:
        start = time.perf_counter()
        scalars, plan_arrays = protocol.encode_plan(local_plan(self.config, phase, self.model))
        state = protocol.encode_state(self.model) | plan_arrays
        nodes = self.sample(phase.round)
        export_seconds, files = 0.0, {node: {} for node in nodes}
        if self.exporter:
            manifest, directory, export_seconds = self.exporter.export(self.model)
            scalars["manifest"] = manifest.to_json()
            files = {node: self.exporter.payload(node, manifest, directory) for node in nodes}
        messages = [
            Message(
                content=RecordDict(
                    {"state": to_record(state), "plan": ConfigRecord(scalars), "artifacts": to_record(files[node])}
                ),
                dst_node_id=node,
                message_type="train",
            )
            for node in nodes
        ]
        replies = list(self.grid.send_and_receive(messages, timeout=self.config.round_timeout))
        updates, losses, failures = [], [], 0
        for reply in replies:
            if self.exporter and reply.has_error():
                self.exporter.forget(reply.metadata.src_node_id)
            elif self.exporter:
                self.exporter.delivered(reply.metadata.src_node_id, manifest)
            if reply.has_error():
                failures += 1
                print(
                    f"[fedmef] round {phase.round}: client error {reply.error.code}: {reply.error.reason}", flush=True
                )
                continue
            arrays = {key: value.numpy() for key, value in reply.content["update"].items()}
            metrics = reply.content["metrics"]
            updates.append((arrays, int(metrics["num-examples"])))
            losses.append(float(metrics["train-loss"]))
        failures += len(nodes) - len(replies)
        if updates:
            protocol.decode_state(self.model, weighted_average(updates))
        pre_adjust_accuracy = float("nan")
        if updates and phase.adjust:
            # accuracy right before and after the cut isolates its damage, which BaE is meant to shrink
            pre_adjust_accuracy = evaluate(self.model, self.test_x, self.test_y)[1]
            self.adjust(updates, phase.fraction)
        loss, accuracy = evaluate(self.model, self.test_x, self.test_y)
        row = {
            "round": phase.round, "accuracy": accuracy, "loss": loss, "pre_adjust_accuracy": pre_adjust_accuracy,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "adjusted": int(phase.adjust and bool(updates)), "extruding": int(phase.extrude),
            "clients": len(updates), "failures": failures,
            "bytes_down": sum(protocol.payload_bytes(state | files[node]) for node in nodes),
            "bytes_up": sum(protocol.payload_bytes(arrays) for arrays, _ in updates),
            "dense_bytes": self.dense_bytes, "seconds": time.perf_counter() - start,
            "export_seconds": export_seconds,
        }  # fmt: skip
        masks = {name: layer.mask for name, layer in self.layers.items()}
        row.update({f"density/{name}": d for name, d in layer_densities(masks).items()})
        self.rundir.log(row)
        tags = "".join([" [extrude]" if phase.extrude else "", " [prune/grow]" if row["adjusted"] else ""])
        print(
            f"[fedmef] round {phase.round:3d}/{self.config.num_rounds}: test acc {100 * accuracy:6.2f} % "
            f"loss {loss:.4f} | {len(updates)} clients, {row['seconds']:.1f} s{tags}",
            flush=True,
        )

    def evaluate_on_clients(self) -> dict[str, float]:
        """Federated evaluation of the final model on every client's local validation split."""
        content = RecordDict({"state": to_record(protocol.encode_state(self.model))})
        nodes = sorted(self.grid.get_node_ids())
        messages = [Message(content=content.copy(), dst_node_id=node, message_type="evaluate") for node in nodes]
        replies = self.grid.send_and_receive(messages, timeout=self.config.round_timeout)
        metrics = [reply.content["metrics"] for reply in replies if not reply.has_error()]
        total = sum(int(m["num-examples"]) for m in metrics)
        if not total:
            return {"clients": 0}
        accuracy = sum(float(m["accuracy"]) * int(m["num-examples"]) for m in metrics) / total
        print(f"[fedmef] federated validation accuracy {100 * accuracy:.2f} % over {len(metrics)} clients", flush=True)
        return {"clients": len(metrics), "accuracy": accuracy, "examples": total}

    def adjust(self, updates: list[tuple[protocol.Arrays, int]], fraction: float) -> None:
        weights = {name: layer.weight.detach() for name, layer in self.layers.items()}
        masks = {name: layer.mask.bool() for name, layer in self.layers.items()}
        scores = growth_scores(updates, {name: w.numel() for name, w in weights.items()})
        new_weights, new_masks = prune_and_grow(weights, masks, scores, adjustment_counts(masks, fraction))
        for name, layer in self.layers.items():
            layer.weight.data.copy_(new_weights[name])
            layer.mask.copy_(new_masks[name].to(layer.mask.dtype))
