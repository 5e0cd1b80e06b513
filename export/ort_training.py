"""ONNX Runtime *training* artifacts: the four standard files an ``OrtTrainingSession`` app loads.

    training_model.onnx   forward + backward: user inputs, then every checkpoint parameter as an input;
                          outputs ``loss`` (CE + the BaE penalty), ``learning_rate`` (with BaE: the
                          budget-aware rate of the step, for ``Optimizer.set_learning_rate``) and the
                          accumulated ``<param>_grad`` (ORT's ``InPlaceAccumulatorV2``, ``lazy_reset_grad``)
    eval_model.onnx       the evaluation graph (per-sample losses and hits), every checkpoint parameter
                          as an input (``Module`` feeds them all; the marked sets are not read)
    optimizer_model.onnx  ORT's own SGD block
    checkpoint            trainable: packed sparse values + dense params; frozen: int32 positions and,
                          with BaE, the marked sets (``<layer>.marked``)

plus ``growth.onnx`` (the growth signal, a plain inference graph) when the key has inactive weights.
The traced gradient includes the weight decay (``dL/dp + wd * p``), so the stock SGD step
``p -= lr * grad`` is the project's update exactly. SAP is the key's ``keep``: < 1 puts SAP's
compressed backward into the training graph. The ORT-training parts (gradient accumulation,
checkpoint, optimizer) are written by the worker in the training venv (``fedmef.ort_training``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import Tensor

from fedmef import protocol as p
from fedmef.manifest import Graph, Manifest, TensorSpec, file_entry
from fedmef.ort_training import worker

from . import onnx_backend
from .graph import SparseForward, effective_values, extrusion_scalars, penalty, to_aten, trace
from .layout import GraphKey, example_inputs, layout_of

RUNTIME = "onnxruntime-training"
EXTENSION = ".onnx"
FILES = {"step": "training_model.onnx", "evaluate": "eval_model.onnx", "growth": "growth.onnx"}
OPTIMIZER, CHECKPOINT = "optimizer_model.onnx", "checkpoint"
LEARNING_RATE = "learning_rate"
FROZEN_ROLES = ("positions", "marked")


def training_inputs(key: GraphKey) -> tuple[list[TensorSpec], list[TensorSpec], list[TensorSpec]]:
    """(user inputs, trainable parameters, frozen parameters) of the training graph."""
    if key.layout == "masked":
        raise ValueError("ort-training artifacts take the sparse (packed) or dense layout, not 'masked'")
    layout = layout_of(key)
    step = layout.inputs("step")
    user = [t for t in step if t.role in ("data", "plan", "counter")]
    if not key.extrusion:  # the host sets the plan's lr on the optimizer; the graph reads no scalar
        user = [t for t in user if t.role == "data"]
    trainable = [t for t in step if t.role in ("values", "weight", "param")]
    frozen = [t for t in step if t.role in FROZEN_ROLES]
    return user, trainable, frozen


def training_function(key: GraphKey):
    """(user inputs..., parameters...) -> (loss, [learning_rate], grad + wd * p per trainable)."""
    model = key.build()
    user, trainable, frozen = training_inputs(key)
    names = [t.name for t in user + trainable + frozen]
    trainable_names = [t.name for t in trainable]
    layers = [t.layer for t in trainable if t.layer is not None]
    forward = SparseForward(model, key)

    def step(*tensors: Tensor) -> tuple[Tensor, ...]:
        inputs = dict(zip(names, tensors, strict=True))
        params = {n: v.detach().requires_grad_() if n in trainable_names else v for n, v in inputs.items()}
        logits, _ = forward.forward(params, inputs[p.X])
        loss = F.cross_entropy(logits, inputs[p.Y])
        rate = []
        if key.extrusion:
            marked = [effective_values(key, model.get_submodule(layer), layer, params) * inputs[f"{layer}.marked"]
                      for layer in layers]  # fmt: skip
            lam, lr = extrusion_scalars(inputs, marked, inputs[p.LR])
            loss = loss + lam * penalty(marked, key.penalty)
            rate = [lr.detach()]
        grads = torch.autograd.grad(loss, [params[n] for n in trainable_names])
        return (loss.detach(), *rate, *(g + key.weight_decay * params[n].detach()
                                        for n, g in zip(trainable_names, grads, strict=True)))  # fmt: skip

    return step, user, trainable, frozen


def export(key: GraphKey, out_dir: str | Path, initial: dict[str, np.ndarray] | None = None) -> Manifest:
    """Write the artifacts of ``key`` into ``out_dir``; the checkpoint holds ``initial`` (by tensor name)
    or example values: every round overwrites the parameters with the server's state anyway."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    layout = layout_of(key)
    step, user, trainable, frozen = training_function(key)
    specs = user + trainable + frozen
    example = example_inputs(specs, key.num_classes)
    gm = to_aten(step, example)
    outputs = ["loss", *([LEARNING_RATE] if key.extrusion else []), *(f"{t.name}_grad" for t in trainable)]
    onnx_backend.write(gm, example, [t.name for t in specs], outputs, out / FILES["step"])
    values = {t.name: v.numpy() for t, v in zip(specs, example, strict=True)} | (initial or {})
    worker().request("build", {t.name: np.asarray(values[t.name], dtype=t.dtype) for t in trainable + frozen},
                     dir=str(out.resolve()), trainable=[t.name for t in trainable], frozen=[t.name for t in frozen])
    graphs = {"step": Graph(FILES["step"], tuple(t.name for t in specs), step_outputs(key))}
    for graph in ("evaluate", "growth"):
        if graph not in layout.graph_inputs:
            continue
        inputs = layout.graph_inputs[graph]
        example = example_inputs(layout.inputs(graph), key.num_classes)
        gm, _ = trace(key, example, graph)
        path = out / FILES[graph]
        onnx_backend.write(gm, example, list(inputs), [o.name for o in layout.outputs[graph]], path)
        if graph == "evaluate":
            inputs = as_module_feeds(path, user, trainable + frozen)
        graphs[graph] = Graph(path.name, inputs, layout.outputs[graph])
    files = [file_entry(out / name) for name in [*(g.file for g in graphs.values()), OPTIMIZER, CHECKPOINT]]
    tensors = [t for t in layout.tensors if t.role != "plan" and t.role != "counter" or t in user]
    manifest = Manifest(runtime=RUNTIME, batch_size=key.batch_size, tensors=tensors, graphs=graphs, files=files,
                        key=key.to_dict(), export_seconds=round(time.perf_counter() - start, 3))  # fmt: skip
    manifest.save(out)
    return manifest


def as_module_feeds(path: Path, user: list[TensorSpec], parameters: list[TensorSpec]) -> tuple[str, ...]:
    """Reorder the eval model's inputs as ``Module`` feeds them — user inputs, then every checkpoint
    parameter in the training model's order — declaring the ones it does not read (the BaE marked sets)."""
    model = onnx.load(str(path))
    declared = {i.name: i for i in model.graph.input}
    order = [t for t in user if t.name in declared] + parameters
    inputs = [declared.get(t.name) or onnx.helper.make_tensor_value_info(
        t.name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), list(t.shape)) for t in order]  # fmt: skip
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    onnx.save(model, str(path))
    return tuple(t.name for t in order)


def step_outputs(key: GraphKey) -> tuple[TensorSpec, ...]:
    """The training graph's user outputs (what ``Module`` returns); the gradients stay in the runtime."""
    loss = TensorSpec("loss", "loss", "float32", ())
    return (loss, TensorSpec(LEARNING_RATE, "learning-rate", "float32", ())) if key.extrusion else (loss,)
