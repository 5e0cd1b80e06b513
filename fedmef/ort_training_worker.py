"""The ONNX Runtime *training* worker: a standalone script run by the second venv's interpreter.

``onnxruntime-training-cpu`` 1.19.2 (the last release) installs the same ``onnxruntime`` module as the
project's ``onnxruntime`` 1.29, so it lives in its own venv (``.venv-ort-training``, from
``requirements-ort-training.lock``) and is driven through this process (``fedmef/ort_training.py``
starts it). It imports numpy, onnx and onnxruntime only — no project module, no torch.

Protocol (stdin → stdout, one request at a time): a JSON header line ``{"op": ..., "arrays": N, ...}``
followed by N bytes of an ``.npz`` archive (N may be 0); the answer has the same form, with
``"ok": true`` or ``"ok": false, "error": "..."``. End of input ends the worker. Operations:

* ``build``:  turn ``<dir>/training_model.onnx`` (forward + backward, outputs ``loss``, other user
  outputs, ``<param>_grad``) into ORT's training model (``InPlaceAccumulatorV2`` per gradient, grad
  buffers, ``lazy_reset_grad``) and write ``checkpoint`` (arrays: ``trainable`` and ``frozen`` names
  in order) and ``optimizer_model.onnx`` (ORT's SGD block);
* ``open``:   load a checkpoint and create ``Module`` + ``Optimizer`` (session ``name``);
* ``train``:  set the checkpoint's parameters from the arrays, then per step: ``module(*inputs)``,
  ``optimizer.set_learning_rate`` (the graph's ``learning_rate`` output when it has one, else the
  step's ``lr``), ``optimizer.step()``, ``module.lazy_reset_grad()``; answers the trainable
  parameters after the last step and the losses.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import types

import numpy as np
import onnx
import onnxruntime

# ``onnxruntime.training/__init__`` imports torch (for ORTModule); the on-device API and onnxblock do
# not. Registering the package without running its __init__ keeps torch out of this venv.
_spec = importlib.util.find_spec("onnxruntime.training")
_package = types.ModuleType("onnxruntime.training")
_package.__path__ = list(_spec.submodule_search_locations)
sys.modules.setdefault("onnxruntime.training", _package)

from onnxruntime.training import onnxblock  # noqa: E402
from onnxruntime.training.api import CheckpointState, Module, Optimizer  # noqa: E402
from onnxruntime.training.onnxblock import _training_graph_utils  # noqa: E402

OPTIMIZER_OPSET = 17  # onnxblock's SGD block (its own model; the training graph keeps its opset)
LEARNING_RATE = "learning_rate"
sessions: dict[str, tuple] = {}


def build(request: dict, arrays: dict[str, np.ndarray]) -> dict:
    directory = request["dir"]
    trainable, frozen = request["trainable"], request["frozen"]
    path = os.path.join(directory, "training_model.onnx")
    model = onnx.load(path)
    produced = {o for node in model.graph.node for o in node.output}
    missing = [name for name in trainable if f"{name}_grad" not in produced]
    if missing:
        raise ValueError(f"no node computes the gradient of {missing}")
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    _training_graph_utils.build_gradient_accumulation_graph(model, set(trainable))
    onnx.save(model, path)
    protos = ([onnx.numpy_helper.from_array(arrays[n], n) for n in trainable],
              [onnx.numpy_helper.from_array(arrays[n], n) for n in frozen])  # fmt: skip
    checkpoint = os.path.join(directory, "checkpoint")
    if os.path.exists(checkpoint):
        os.remove(checkpoint)
    onnxblock.save_checkpoint(protos, checkpoint)
    with onnxblock.empty_base(opset_version=OPTIMIZER_OPSET):
        sgd = onnxblock.optim.SGD()
        sgd(protos)
        optimizer = sgd.to_model_proto()
    onnx.save(optimizer, os.path.join(directory, "optimizer_model.onnx"))
    return {}


def open_session(request: dict, _arrays) -> dict:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(request.get("threads", 0))
    state = CheckpointState.load_checkpoint(request["checkpoint"])
    module = Module(request["training"], state, request.get("eval"), session_options=options)
    optimizer = Optimizer(request["optimizer"], module)
    sessions[request["name"]] = (state, module, optimizer)
    return {"inputs": list(module.input_names()), "outputs": list(module.output_names())}


def train(request: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """``arrays``: every checkpoint parameter by name, per user input ``input/<name>`` stacked over the
    steps (first axis), and ``plan_lr`` (per step) for graphs without a ``learning_rate`` output."""
    state, module, optimizer = sessions[request["name"]]
    names = [name for name, _ in state.parameters]
    for name in names:
        state.parameters[name].data = np.ascontiguousarray(arrays[name])
    inputs = module.input_names()
    outputs = module.output_names()
    steps = int(request["steps"])
    module.train()
    losses, rates = [], []
    for step in range(steps):
        results = module(*[np.ascontiguousarray(arrays[f"input/{name}"][step]) for name in inputs])
        results = results if isinstance(results, list | tuple) else [results]
        values = dict(zip(outputs, results, strict=True))
        rate = (values[LEARNING_RATE] if LEARNING_RATE in values else arrays["plan_lr"][step]).item()
        optimizer.set_learning_rate(rate)
        optimizer.step()
        module.lazy_reset_grad()
        losses.append(values["loss"].item())
        rates.append(rate)
    trained = {name: state.parameters[name].data for name in names if state.parameters[name].requires_grad}
    return {}, trained | {"losses": np.asarray(losses), "learning_rates": np.asarray(rates)}


OPERATIONS = {"build": build, "open": open_session, "train": train}


def _read(stream) -> tuple[dict, dict[str, np.ndarray]] | None:
    line = stream.readline()
    if not line:
        return None
    header = json.loads(line)
    size = int(header.get("arrays", 0))
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError("request ended inside its arrays")
    return header, (dict(np.load(io.BytesIO(data))) if size else {})


def _write(stream, header: dict, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    if arrays:
        np.savez(buffer, **arrays)
    header = header | {"arrays": buffer.tell()}
    stream.write(json.dumps(header).encode() + b"\n" + buffer.getvalue())
    stream.flush()


def main() -> None:
    # answers go to the original stdout; anything the runtime prints goes to stderr
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    onnxruntime.set_default_logger_severity(3)
    requests = sys.stdin.buffer
    _write(answers, {"ok": True, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}, {})
    while (request := _read(requests)) is not None:
        header, arrays = request
        try:
            result = OPERATIONS[header["op"]](header, arrays)
            extra, out = result if isinstance(result, tuple) else (result, {})
            _write(answers, {"ok": True} | extra, out)
        except Exception as error:  # noqa: BLE001 - the caller raises it with the worker's message
            _write(answers, {"ok": False, "error": f"{type(error).__name__}: {error}"}, {})


if __name__ == "__main__":
    main()
