"""The ``ort-training`` client backend: the round on ONNX Runtime's stock training API.

The manifest's ``step`` graph is ``training_model.onnx`` of a standard artifact set (with
``optimizer_model.onnx`` and ``checkpoint`` beside it in the store). The worker in the training venv
(``fedmef.ort_training``) holds ``CheckpointState`` + ``Module`` + ``Optimizer`` per artifact set; each
round sets the checkpoint's parameters from the wire state and runs the documented batch order as
``module(*inputs)``, ``optimizer.set_learning_rate``, ``optimizer.step()``, ``module.lazy_reset_grad()``
— no project code inside the step. Evaluation and growth are plain inference graphs
(``eval_model.onnx``, ``growth.onnx``) run like the ``ort`` backend's (``rounds.GraphBackend``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedmef import protocol as p
from fedmef.manifest import Manifest
from fedmef.ort_training import worker

from .rounds import GraphBackend

RUNTIME = "onnxruntime-training"
USER_ROLES = ("data", "plan", "counter")


class TrainingSession:
    """An artifact set opened in the worker: ``open_step(manifest, path)`` for the store's files."""

    def __init__(self, manifest: Manifest, step_path: Path, threads: int = 0):
        by_name = {entry.name: entry for entry in manifest.files}
        missing = [name for name in ("optimizer_model.onnx", "checkpoint") if name not in by_name]
        if missing:
            raise ValueError(f"an {RUNTIME} manifest must list {missing}")
        self.name = manifest.file("step").sha256
        store = step_path.parent
        header, _ = worker().request(
            "open", name=self.name, training=str(step_path), threads=threads,
            optimizer=str(store / by_name["optimizer_model.onnx"].sha256),
            checkpoint=str(store / by_name["checkpoint"].sha256),
        )  # fmt: skip
        self.inputs = header["inputs"]

    def __call__(self, feeds):
        raise TypeError("an ORT training model runs whole rounds (OrtTrainingBackend.train), not single feeds")


class OrtTrainingBackend(GraphBackend):
    """``GraphBackend`` whose local steps run in the ORT training worker."""

    def train(self, wire: p.Arrays, plan: dict, x: np.ndarray, y: np.ndarray) -> tuple[p.Arrays, float]:
        manifest, session = self.manifest, self.graphs["step"]
        if int(plan[p.BATCH_SIZE]) != manifest.batch_size:
            raise ValueError(f"plan batch size {plan[p.BATCH_SIZE]}, the graphs take {manifest.batch_size}")
        if p.with_prefix(p.READJUST, plan):
            raise ValueError("the plan asks for FedDST's local prune/regrow, which runs on the torch backend only")
        order = p.batches(len(x), manifest.batch_size, int(plan[p.EPOCHS]), int(plan[p.SEED]))
        state = p.pack_state(manifest, "step", wire)
        specs = {spec.name: spec for spec in manifest.inputs("step") if spec.role in USER_ROLES}
        per_step = {p.X: x[np.stack(order)], p.Y: y[np.stack(order)],
                    p.STEP: np.arange(len(order)), p.STEPS: np.full(len(order), len(order))}  # fmt: skip
        inputs = {}
        for name in session.inputs:
            if name not in specs:
                raise ValueError(f"training model input {name!r} is not a data, plan or counter tensor of the manifest")
            value = per_step[name] if name in per_step else np.full(len(order), plan[name])
            inputs[f"input/{name}"] = np.asarray(value, dtype=specs[name].dtype)
        rates = np.full(len(order), plan[p.LR], dtype=np.float32)
        _, trained = worker().request("train", state | inputs | {"plan_lr": rates}, name=session.name,
                                      steps=len(order))  # fmt: skip
        losses = trained.pop("losses")
        trained.pop("learning_rates")
        state |= trained
        update = p.unpack(manifest, "step", state)
        counts = {layer: int(c) for layer, c in p.with_prefix(p.GROW, plan).items()}
        if counts:
            update |= self.growth(state, counts, x, y, int(plan[p.SEED]))
        return update, float(np.mean(losses))
