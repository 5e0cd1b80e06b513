"""A FedMef client written from ``docs/protocol.md`` alone: numpy, json, hashlib, onnxruntime.

It imports nothing of the project (no ``fedmef``, ``export``, ``server``, ``python_client``) and is
the executable proof that the written contract is enough to take part: ``tests/test_contract.py``
checks it produces the same update bytes as the Python client. Deliberately plain and short.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

M64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def batch_order(n: int, size: int, epochs: int, seed: int) -> list[list[int]]:
    state, out = seed, []
    for _ in range(epochs):
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            state, r = splitmix64(state)
            j = r % (i + 1)
            order[i], order[j] = order[j], order[i]
        if n < size:
            order = [order[i % n] for i in range(size)]
        out += [order[b * size : (b + 1) * size] for b in range(len(order) // size)]
    return out


def feed_value(spec: dict, state: dict) -> np.ndarray:
    role, layer = spec["role"], spec.get("layer")
    if role == "param":
        return state["d/" + spec["name"]]
    numel = math.prod(spec["dense_shape"])
    positions = np.flatnonzero(np.unpackbits(state["m/" + layer], count=numel))
    if role == "positions":
        return positions.astype(np.int32)
    if role == "values":
        return state["v/" + layer]
    if role == "marked":
        marked = np.zeros(numel, np.float32)
        marked[state.get("x/" + layer, np.empty(0, np.int64)).astype(np.int64)] = 1
        return marked[positions] if spec["shape"] != spec["dense_shape"] else marked.reshape(spec["shape"])
    raise ValueError(f"role {role} not handled by this minimal client")


class Client:
    def __init__(self, store: Path):
        self.store = store

    def graph(self, manifest: dict, name: str) -> ort.InferenceSession:
        entry = next(f for f in manifest["files"] if f["name"] == manifest["graphs"][name]["file"])
        data = (self.store / entry["name"]).read_bytes()
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"{entry['name']}: sha256 mismatch")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(data, options, disabled_optimizers=["ConstantFolding"])

    def train(self, state: dict, plan: dict, x: np.ndarray, y: np.ndarray) -> tuple[dict, float]:
        manifest = json.loads(plan["manifest"])
        assert manifest["schema_version"] == 2
        tensors = {t["name"]: t for t in manifest["tensors"]}
        step = manifest["graphs"]["step"]
        feeds = {n: np.asarray(feed_value(tensors[n], state), tensors[n]["dtype"]) for n in step["inputs"]
                 if tensors[n]["role"] not in ("data", "plan", "counter")}  # fmt: skip
        feeds |= {n: np.array(plan[n], np.float32) for n in step["inputs"] if tensors[n]["role"] == "plan"}
        session = self.graph(manifest, "step")
        wanted = {i.name for i in session.get_inputs()}
        order = batch_order(len(x), manifest["batch_size"], plan["epochs"], plan["seed"])
        losses = []
        for index, batch in enumerate(order):
            feeds |= {"x": x[batch], "y": y[batch], "step": np.array(index, np.float32),
                      "steps": np.array(len(order), np.float32)}
            outputs = session.run(None, {k: v for k, v in feeds.items() if k in wanted})
            for out, value in zip(step["outputs"], outputs, strict=True):
                if out["role"] == "update":
                    feeds[out["of"]] = value
                else:
                    losses.append(float(value))
        update = {}
        for name in step["inputs"]:
            spec = tensors[name]
            if spec["role"] == "values":
                update["v/" + spec["layer"]] = feeds[name]
            elif spec["role"] == "param":
                update["d/" + name] = feeds[name]
        counts = {k[5:]: v for k, v in plan.items() if k.startswith("grow/")}
        if counts:
            batch = batch_order(len(x), manifest["batch_size"], 1, plan["seed"] + 1)[0]
            growth = manifest["graphs"]["growth"]
            session = self.graph(manifest, "growth")
            wanted = {i.name for i in session.get_inputs()}
            grow_feeds = {n: feeds[n] for n in growth["inputs"] if n not in ("x", "y")} | {"x": x[batch], "y": y[batch]}
            outputs = session.run(None, {k: v for k, v in grow_feeds.items() if k in wanted})
            results = dict(zip([o["name"] for o in growth["outputs"]], outputs, strict=True))
            for layer, count in counts.items():
                update["gi/" + layer] = results.get("grow-indices/" + layer, np.empty(0, np.int32))[:count]
                update["gv/" + layer] = results.get("grow-magnitudes/" + layer, np.empty(0, np.float32))[:count]
        return update, float(np.mean(losses))
