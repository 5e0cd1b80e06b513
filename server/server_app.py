"""Flower ServerApp: one FedMef round is sample -> ship -> train -> aggregate -> adjust -> log.

The server owns the global sparse model and the schedule (``schedule.py``). Each round it sends
the sparse state, the plan (the schedule's scalars, the marked set on extrusion rounds, growth
counts on adjustment rounds) and, for exported backends, the manifest and the files a node lacks;
after aggregating the clients' sparse updates it prunes/grows on adjustment rounds (ranking by
effective weight), evaluates on the central test set, appends a row to the run directory and
checkpoints (``checkpoint.py``; ``resume = true`` continues from there). For FedDST the clients
prune/regrow and the server votes and re-prunes (``fedmef/feddst.py``). A round with fewer than
``min-replies`` valid updates keeps the previous model; every sampled node without an update is
logged with the reason. Records and keys: ``docs/protocol.md``; operations: ``docs/deployment.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from fedmef import feddst, wire
from fedmef import protocol as p
from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.sparsity import layer_densities
from fedmef.task import initial_model, tensors, test_set
from fedmef.training import evaluate

from . import checkpoint, results, schedule
from .aggregation import Intake, RunningAggregate, take_in
from .artifacts import RoundExporter
from .faults import FaultyGrid
from .rundir import RunDirectory
from .schedule import RoundPhase, local_plan, round_phase
from .validation import ExpectedUpdate

app = ServerApp()
# Flower's error codes by name; code 1 is also the protocol's own client error (docs/protocol.md §1)
ERROR_NAMES = {code: name for name, code in vars(ErrorCode).items() if isinstance(code, int)} | {
    p.CLIENT_ERROR: "client error"}


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = RunConfig.from_run_config(context.run_config)
    if config.fault_fraction:  # a reliability run: spoil that share of each round's replies
        grid = FaultyGrid(grid, config.fault_fraction, config.seed)
    Federation(grid, config).run()


def reply_nodes(replies: list[Message], sent: list[Message]) -> list[int]:
    """The node each reply answers for: its sender, or for the SuperLink's own error replies (node
    unavailable) the destination of the instruction it replies to (the grid set the ids on push)."""
    nodes = {message.metadata.dst_node_id for message in sent}
    destination = {message.metadata.message_id: message.metadata.dst_node_id for message in sent}
    sources = [reply.metadata.src_node_id for reply in replies]
    return [source if source in nodes else destination.get(reply.metadata.reply_to_message_id, source)
            for source, reply in zip(sources, replies, strict=True)]  # fmt: skip


def to_record(arrays: p.Arrays) -> ArrayRecord:
    return ArrayRecord(array_dict={key: Array(np.ascontiguousarray(value)) for key, value in arrays.items()})


@dataclass
class Shipment:
    """What one round sends: shared state and plan, and per node the files it still lacks."""

    state: p.Arrays
    plan: dict
    files: dict[int, p.Arrays]
    manifest: object = None
    export_seconds: float = 0.0

    def message(self, node: int, message_type: str, group_id: str = "") -> Message:
        """Train instructions carry the round as Flower's ``group_id``, which replies copy."""
        content = {p.STATE: to_record(self.state), p.PLAN: ConfigRecord(self.plan),
                   p.ARTIFACTS: to_record(self.files.get(node, {}))}  # fmt: skip
        return Message(RecordDict(content), dst_node_id=node, message_type=message_type, group_id=group_id)

    def bytes_to(self, node: int) -> int:
        return p.payload_bytes(self.state | self.files.get(node, {}))


@dataclass
class Replies:
    intake: Intake = field(default_factory=lambda: Intake(RunningAggregate({})))  # the accepted updates, summed
    failures: int = 0  # sampled nodes without a reply or with an error reply
    rejected: int = 0
    model_kept: bool = False  # fewer than min-replies valid updates: no aggregation

    @property
    def clients(self) -> int:
        """Updates that went into the model."""
        return 0 if self.model_kept else self.intake.aggregate.clients


class Federation:
    def __init__(self, grid: Grid, config: RunConfig):
        self.grid, self.config = grid, config
        self.model = initial_model(config)
        self.layers = prunable_layers(self.model)
        self.numels = {name: layer.weight.numel() for name, layer in self.layers.items()}
        self.test_x, self.test_y = tensors(test_set(config))
        self.rundir = RunDirectory(config, list(self.layers))
        self.dense_bytes = 4 * sum(param.numel() for param in self.model.parameters())
        cache = Path(config.output_dir).expanduser().resolve() / "export-cache"
        self.exporter = RoundExporter(config, cache) if config.backend != "torch" else None
        self.next_round = 1
        if self.rundir.resumed and not self.rundir.finished:
            self.resume()
        elif config.resume and not self.rundir.resumed:
            print(f"[fedmef] resume=true, but there is no run directory {self.rundir.path} yet: starting the run",
                  flush=True)  # fmt: skip

    def resume(self) -> None:
        """Go on after the last checkpointed round; a row logged after it is dropped and redone."""
        saved = checkpoint.load(self.rundir.path)
        if saved:
            saved.restore(self.model)
            self.next_round = saved.next_round
        self.rundir.restore(saved.rows if saved else [])
        print(f"[fedmef] resuming {self.rundir.path.name} at round {self.next_round}; every node is sent the "
              "artifact files again", flush=True)  # fmt: skip

    def run(self) -> None:
        print(f"[fedmef] {self.config.method} on {self.config.dataset}: run directory {self.rundir.path}", flush=True)
        if self.rundir.finished:
            print(f"[fedmef] run {self.rundir.path.name} already finished (report.md): nothing to do", flush=True)
        else:
            for round_num in range(self.next_round, self.config.num_rounds + 1):
                self.round(round_phase(self.config, round_num))
                checkpoint.save(self.rundir.path, checkpoint.Checkpoint.of(round_num + 1, self.model, self.rundir.rows))
            self.rundir.finish(self.model, self.evaluate_on_clients())
        final = self.rundir.final_row()
        print(f"[fedmef] final test accuracy {100 * float(final['accuracy']):.2f} % | run directory {self.rundir.path}",
              flush=True)  # fmt: skip
        results.publish(self.rundir.path)  # the launcher gets the run's files wherever the SuperLink runs

    def round(self, phase: RoundPhase) -> None:
        start = time.perf_counter()
        nodes = self.sample(phase.round)
        plan, marked = wire.encode_plan(local_plan(self.config, phase, self.model), phase.round)
        shipment = self.ship(nodes, wire.encode_state(self.model) | marked, plan)
        messages = [shipment.message(node, p.TRAIN, str(phase.round)) for node in nodes]
        answers = list(self.grid.send_and_receive(messages, timeout=self.config.round_timeout))
        vote = phase.adjust and self.config.flags.local_dst  # FedDST: the clients cut, the server votes
        replies = self.collect(phase.round, answers, shipment, messages, keep_updates=vote)
        valid = replies.intake.aggregate.clients
        if replies.rejected and not valid:
            print(f"[fedmef] round {phase.round}: every reply rejected, keeping the previous model", flush=True)
            replies.model_kept = True
        elif valid < self.config.min_replies:
            print(f"[fedmef] round {phase.round}: {valid} valid update(s), fewer than min-replies "
                  f"{self.config.min_replies}: keeping the previous model", flush=True)  # fmt: skip
            replies.model_kept = True
        pre_adjust = (float("nan"), float("nan"))
        if replies.clients and vote:  # no uncut model to evaluate
            self.vote(replies.intake.updates)
        elif replies.clients:
            wire.decode_state(self.model, replies.intake.aggregate.average())
            if phase.adjust:  # loss/accuracy right before and after the cut isolate its damage, which BaE shrinks
                pre_adjust = evaluate(self.model, self.test_x, self.test_y)
                schedule.adjust(self.model, replies.intake.aggregate.growth_scores(), phase.fraction)
        self.log(phase, nodes, shipment, replies, pre_adjust, time.perf_counter() - start)

    def sample(self, round_num: int) -> list[int]:
        nodes = sorted(self.connected_nodes())
        count = min(self.config.clients_per_round, len(nodes))
        rng = np.random.default_rng(self.config.seed * 7919 + round_num)
        return [nodes[i] for i in rng.choice(len(nodes), size=count, replace=False)]  # ids exceed int64

    def connected_nodes(self) -> list[int]:
        """The connected nodes, once at least min-replies are (after a restart nodes reconnect within
        about a heartbeat interval), or whatever is connected when round-timeout has passed."""
        deadline = time.monotonic() + self.config.round_timeout
        nodes = list(self.grid.get_node_ids())
        if len(nodes) < self.config.min_replies:
            print(f"[fedmef] {len(nodes)} node(s) connected, waiting for min-replies {self.config.min_replies}",
                  flush=True)  # fmt: skip
        while len(nodes) < self.config.min_replies and time.monotonic() < deadline:
            time.sleep(1.0)
            nodes = list(self.grid.get_node_ids())
        return nodes

    def ship(self, nodes: list[int], state: p.Arrays, plan: dict) -> Shipment:
        """The round's export (cached across rounds) in the plan, and each node's missing files."""
        if not self.exporter:
            return Shipment(state, plan, {})
        manifest, directory, seconds = self.exporter.export(self.model)
        files = {node: self.exporter.payload(node, manifest, directory) for node in nodes}
        return Shipment(state, plan | {p.MANIFEST: manifest.to_json()}, files, manifest, seconds)

    def collect(self, round_num: int, replies: list[Message], shipment: Shipment, sent: list[Message],
                keep_updates: bool = False) -> Replies:  # fmt: skip
        """The round's updates that pass ``validation``, summed one at a time (``aggregation.take_in``):
        each reply checked against the instruction, then the norms of the valid ones against the
        round's median + k·MAD. Every node ``sent`` an instruction without a valid reply is logged
        with the reason."""
        out, answered = Replies(), []
        senders = reply_nodes(replies, sent)
        for node in (message.metadata.dst_node_id for message in sent):
            if node not in senders:
                self.missing(out, round_num, node, f"no reply within round-timeout {self.config.round_timeout:g} s")
        for node, reply in zip(senders, replies, strict=True):
            if reply.has_error():
                code = reply.error.code
                self.missing(out, round_num, node, f"{ERROR_NAMES.get(code, 'error')} ({code}): {reply.error.reason}")
                continue
            if self.exporter:
                self.exporter.delivered(node, shipment.manifest)
            answered.append((node, reply))
        out.intake = take_in(
            answered, round_num, ExpectedUpdate.of(shipment.state, shipment.plan, self.numels),
            max_num_examples=self.config.max_num_examples, reject_norm_mads=self.config.reject_norm_mads,
            reject=lambda node, reason: self.reject(out, round_num, node, reason), keep_updates=keep_updates,
        )  # fmt: skip
        return out

    def missing(self, replies: Replies, round_num: int, node: int, reason: str) -> None:
        replies.failures += 1
        if self.exporter:
            self.exporter.forget(node)  # it may have lost the files: send them all next time
        print(f"[fedmef] round {round_num}: no update from node {node}: {reason}", flush=True)

    @staticmethod
    def reject(replies: Replies, round_num: int, node: int, reason: str) -> None:
        replies.rejected += 1
        print(f"[fedmef] round {round_num}: rejected the update of node {node}: {reason}", flush=True)

    def vote(self, updates: list[tuple[p.Arrays, int]]) -> None:
        """FedDST: average over the clients' own masks, then re-prune to each layer's nnz by magnitude."""
        targets = {name: int(layer.mask.sum()) for name, layer in self.layers.items()}
        aggregated = feddst.vote_average(updates, {name: layer.mask.numel() for name, layer in self.layers.items()})
        wire.decode_state(self.model, aggregated)
        feddst.reprune(self.model, p.with_prefix(feddst.VOTES, aggregated), targets)

    def log(self, phase: RoundPhase, nodes, shipment: Shipment, replies: Replies, pre_adjust: tuple[float, float],
            seconds: float):  # fmt: skip
        loss, accuracy = evaluate(self.model, self.test_x, self.test_y)
        aggregated = not replies.model_kept
        row = {
            "round": phase.round, "accuracy": accuracy, "loss": loss,
            "pre_adjust_accuracy": pre_adjust[1], "pre_adjust_loss": pre_adjust[0],
            "train_loss": float(np.mean(replies.intake.losses)) if aggregated and replies.intake.losses else math.nan,
            "adjusted": int(phase.adjust and bool(replies.clients)), "extruding": int(phase.extrude),
            "clients": replies.clients, "failures": replies.failures, "rejected": replies.rejected,
            "model_kept": int(replies.model_kept),
            "max_norm_mads": replies.intake.max_norm_mads,
            "bytes_down": sum(shipment.bytes_to(node) for node in nodes),
            "bytes_up": replies.intake.bytes_up if aggregated else 0,
            "dense_bytes": self.dense_bytes, "seconds": seconds, "export_seconds": shipment.export_seconds,
        }  # fmt: skip
        masks = {name: layer.mask for name, layer in self.layers.items()}
        row.update({f"density/{name}": d for name, d in layer_densities(masks).items()})
        self.rundir.log(row)
        tags = "".join([" [extrude]" if phase.extrude else "", " [prune/grow]" if row["adjusted"] else ""])
        print(f"[fedmef] round {phase.round:3d}/{self.config.num_rounds}: test acc {100 * accuracy:6.2f} % "
              f"loss {loss:.4f} | {replies.clients} clients, {seconds:.1f} s{tags}", flush=True)  # fmt: skip

    def evaluate_on_clients(self) -> dict[str, float]:
        """Federated evaluation of the final model on every client's local validation split."""
        nodes = sorted(self.grid.get_node_ids())
        shipment = self.ship(nodes, wire.encode_state(self.model), {})
        messages = [shipment.message(node, p.EVALUATE) for node in nodes]
        replies = self.grid.send_and_receive(messages, timeout=self.config.round_timeout)
        metrics = []
        for reply in replies:
            if reply.has_error():
                print(f"[fedmef] evaluation: client error {reply.error.code}: {reply.error.reason}", flush=True)
            else:
                metrics.append(reply.content[p.METRICS])
        total = sum(int(m[p.NUM_EXAMPLES]) for m in metrics)
        if not total:
            return {"clients": 0}
        accuracy = sum(float(m[p.ACCURACY]) * int(m[p.NUM_EXAMPLES]) for m in metrics) / total
        print(f"[fedmef] federated validation accuracy {100 * accuracy:.2f} % over {len(metrics)} clients", flush=True)
        return {"clients": len(metrics), "accuracy": accuracy, "examples": total}
