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
from fedmef.task import make_model, partition, tensors
from fedmef.training import batch_indices, evaluate

from .backends import make_backend

app = ClientApp()
CLIENT_ERROR = 1


def load_round(msg: Message, context: Context):
    config = RunConfig.from_run_config(context.run_config)
    node = context.node_config
    data = partition(config, int(node["partition-id"]), int(node["num-partitions"]))
    arrays = {key: value.numpy() for key, value in msg.content["state"].items()}
    model = make_model(config)
    protocol.decode_state(model, arrays)
    return config, data, model, arrays


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


@app.train()
@guarded
def train(msg: Message, context: Context) -> Message:
    start = time.perf_counter()
    config, data, model, arrays = load_round(msg, context)
    plan = protocol.decode_plan(dict(msg.content["plan"]), arrays)
    backend = make_backend(context.node_config.get("backend", config.backend))
    x, y = tensors(data.train)
    loss = backend.train(model, x, y, plan)
    update = protocol.encode_state(model, with_masks=False)
    if plan.growth_counts:
        batch = batch_indices(len(x), plan.batch_size, 1, plan.seed + 1)[0]
        update |= protocol.encode_growth(backend.growth(model, x[batch], y[batch], plan.growth_counts))
    metrics = {"num-examples": len(x), "train-loss": loss, "seconds": time.perf_counter() - start}
    record = ArrayRecord(array_dict={key: Array(np.ascontiguousarray(value)) for key, value in update.items()})
    return Message(RecordDict({"update": record, "metrics": MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
@guarded
def evaluate_local(msg: Message, context: Context) -> Message:
    _, data, model, _ = load_round(msg, context)
    split = data.validation if len(data.validation) else data.train
    loss, accuracy = evaluate(model, *tensors(split))
    metrics = {"num-examples": len(split), "loss": loss, "accuracy": accuracy}
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
