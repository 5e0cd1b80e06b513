"""Flower ClientApp: load the round's sparse state, train locally with a backend, reply sparsely.

Train reply: ``update`` (``v/`` values at active positions, ``d/`` dense parameters, and on
adjustment rounds the ``gi/``/``gv/`` growth signal) and ``metrics`` (num-examples, train-loss,
seconds). Any failure becomes an error reply, so the server's round goes on without this client.
"""

from __future__ import annotations

import time
import traceback

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedmef import protocol
from fedmef.config import RunConfig
from fedmef.export.manifest import Manifest
from fedmef.task import make_model, partition, tensors
from fedmef.training import batch_indices, evaluate

from .artifacts import ArtifactStore, default_root
from .backends import make_backend

app = ClientApp()
CLIENT_ERROR = 1


def arrays_of(record: ArrayRecord) -> protocol.Arrays:
    return {key: value.numpy() for key, value in record.items()}


def guarded(handler):
    """Turn any exception into an error reply naming it, so the server can carry on."""

    def wrapper(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as error:  # noqa: BLE001 - reported to the server, not swallowed
            traceback.print_exc()
            return msg.create_error_reply(Error(code=CLIENT_ERROR, reason=f"{type(error).__name__}: {error}"))

    wrapper.__name__ = handler.__name__
    return wrapper


def client_task(config: RunConfig, node_config: dict):
    """This node's data share and a fresh model of the run's architecture."""
    data = partition(config, int(node_config["partition-id"]), int(node_config["num-partitions"]))
    return data, make_model(config)


def local_round(
    config: RunConfig, node_config: dict, store: ArtifactStore,
    state: protocol.Arrays, scalars: dict, files: protocol.Arrays,
) -> tuple[protocol.Arrays, dict]:  # fmt: skip
    """One client round without Flower types: (sparse update, metrics)."""
    start = time.perf_counter()
    data, model = client_task(config, node_config)
    protocol.decode_state(model, state)
    plan = protocol.decode_plan(scalars, state)
    runner = None
    if "manifest" in scalars:  # the server exported this round's step: run it, not eager PyTorch
        manifest = Manifest.from_json(scalars["manifest"])
        store.receive(manifest, {key.removeprefix("file/"): value for key, value in files.items()})
        runner = store.runner(manifest)
    # a node may insist on the eager reference (node config backend="torch") and ignore the artifact
    name = node_config.get("backend", config.backend)
    backend = make_backend(name, runner if name != "torch" else None)
    x, y = tensors(data.train)
    loss = backend.train(model, x, y, plan)
    update = protocol.encode_state(model, with_masks=False)
    if plan.growth_counts:
        batch = batch_indices(len(x), plan.batch_size, 1, plan.seed + 1)[0]
        update |= protocol.encode_growth(backend.growth(model, x[batch], y[batch], plan.growth_counts))
    return update, {"num-examples": len(x), "train-loss": loss, "seconds": time.perf_counter() - start}


@app.train()
@guarded
def train(msg: Message, context: Context) -> Message:
    config = RunConfig.from_run_config(context.run_config)
    store = ArtifactStore(default_root(context.node_id))
    content = msg.content
    state, scalars, files = arrays_of(content["state"]), dict(content["plan"]), arrays_of(content["artifacts"])
    update, metrics = local_round(config, context.node_config, store, state, scalars, files)
    record = ArrayRecord(array_dict={key: Array(np.ascontiguousarray(value)) for key, value in update.items()})
    return Message(RecordDict({"update": record, "metrics": MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
@guarded
def evaluate_local(msg: Message, context: Context) -> Message:
    data, model = client_task(RunConfig.from_run_config(context.run_config), context.node_config)
    protocol.decode_state(model, arrays_of(msg.content["state"]))
    split = data.validation if len(data.validation) else data.train
    loss, accuracy = evaluate(model, *tensors(split))
    metrics = {"num-examples": len(split), "loss": loss, "accuracy": accuracy}
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
