"""Flower ClientApp: the contract's client round (``docs/protocol.md``), run by a backend.

A train instruction carries the sparse state, the plan and (for exported backends) the manifest
and any files this node lacks; the reply carries the sparse update and metrics. With a manifest
the round runs the exported graphs (``rounds.GraphBackend``: numpy + the runtime, no torch); a node
started with ``--node-config 'backend="torch"'`` runs the eager reference instead. Any failure
becomes an error reply naming it, so the server's round goes on without this client.
"""

from __future__ import annotations

import time
import traceback
from functools import cache
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmef import protocol as p
from fedmef.config import BACKEND_RUNTIMES, BACKENDS, RunConfig
from fedmef.manifest import Manifest
from fedmef.partitions import partition

from .artifacts import ArtifactStore, default_root

app = ClientApp()


@cache
def share(config: RunConfig, partition_id: int, num_partitions: int):
    """This node's data share, computed once per process (the run config alone fixes it)."""
    return partition(config, partition_id, num_partitions)


@cache
def store_at(root: Path) -> ArtifactStore:
    """One store per directory for the process's lifetime, so opened graphs outlive a round."""
    return ArtifactStore(root)


def arrays_of(record: ArrayRecord) -> p.Arrays:
    return {key: value.numpy() for key, value in record.items()}


def to_record(arrays: p.Arrays) -> ArrayRecord:
    return ArrayRecord(array_dict={key: Array(np.ascontiguousarray(value)) for key, value in arrays.items()})


def guarded(handler):
    """Turn any exception into an error reply naming it, so the server can carry on."""

    def wrapper(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as error:  # noqa: BLE001 - reported to the server, not swallowed
            traceback.print_exc()
            return msg.create_error_reply(Error(code=p.CLIENT_ERROR, reason=f"{type(error).__name__}: {error}"))

    wrapper.__name__ = handler.__name__
    return wrapper


def backend_for(config: RunConfig, node_config: dict, store: ArtifactStore, plan: dict, files: p.Arrays):
    """The exported graphs of the plan's manifest, or the eager reference for a ``torch`` node.

    A node started with ``backend="ort"``, ``"ort-training"`` or ``"executorch"`` runs only that runtime's
    artifacts."""
    backend = node_config.get("backend", config.backend)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if backend == "torch":
        from .eager import EagerBackend  # torch only where it is used

        return EagerBackend(config)
    if p.MANIFEST not in plan:
        raise ValueError(f"backend {config.backend!r} needs the round's manifest, and none was sent")
    manifest = Manifest.from_json(plan[p.MANIFEST])
    if "backend" in node_config and manifest.runtime != BACKEND_RUNTIMES[backend]:
        raise ValueError(f"this node runs backend {backend!r} and cannot run a {manifest.runtime} artifact")
    store.receive(manifest, p.with_prefix(p.FILE, files))
    backend = store.backend(manifest)
    if manifest.runtime == "onnxruntime-training":
        from .ort_training import OrtTrainingBackend

        return OrtTrainingBackend(manifest, backend.graphs)
    return backend


def local_round(
    config: RunConfig, node_config: dict, store: ArtifactStore, state: p.Arrays, plan: dict, files: p.Arrays
) -> tuple[p.Arrays, dict]:
    """One client train round without Flower types: (sparse update, metrics)."""
    start = time.perf_counter()
    data = share(config, int(node_config["partition-id"]), int(node_config["num-partitions"]))
    backend = backend_for(config, node_config, store, plan, files)
    update, loss = backend.train(state, plan, data.train.x, data.train.y)
    return update, {p.NUM_EXAMPLES: len(data.train), p.TRAIN_LOSS: loss, p.SECONDS: time.perf_counter() - start}


def local_evaluation(
    config: RunConfig, node_config: dict, store: ArtifactStore, state: p.Arrays, plan: dict, files: p.Arrays
) -> dict:
    data = share(config, int(node_config["partition-id"]), int(node_config["num-partitions"]))
    split = data.validation if len(data.validation) else data.train
    loss, accuracy = backend_for(config, node_config, store, plan, files).evaluate(state, split.x, split.y)
    return {p.NUM_EXAMPLES: len(split), p.LOSS: loss, p.ACCURACY: accuracy}


def _inputs(msg: Message, context: Context):
    content = msg.content
    return (RunConfig.from_run_config(context.run_config), context.node_config, store_at(default_root(context.node_id)),
            arrays_of(content[p.STATE]), dict(content[p.PLAN]), arrays_of(content[p.ARTIFACTS]))  # fmt: skip


@app.train()
@guarded
def train(msg: Message, context: Context) -> Message:
    update, metrics = local_round(*_inputs(msg, context))
    return Message(RecordDict({p.UPDATE: to_record(update), p.METRICS: MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
@guarded
def evaluate(msg: Message, context: Context) -> Message:
    metrics = local_evaluation(*_inputs(msg, context))
    return Message(RecordDict({p.METRICS: MetricRecord(metrics)}), reply_to=msg)
