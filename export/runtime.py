"""The runtime-adapter interface clients use: one ``StepRunner`` protocol, one adapter per runtime.

Every adapter runs the two exported graphs of a manifest — ``step`` (one SGD step, state in and
state out) and ``growth`` (d CE / d W_used per prunable layer, the prune/grow signal) — and
differs only in how it opens a file and runs it (``_open``/``_run``); feeding, checking and
unpacking outputs live here once. Runtime-specific (private or experimental) APIs stay inside
``onnx_backend.py`` and ``executorch_backend.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from .manifest import Manifest, verify

State = dict[str, np.ndarray]
ADAPTERS = {"onnxruntime": "onnx_backend", "executorch": "executorch_backend"}


class StepRunner(Protocol):
    manifest: Manifest

    def step(self, state: State, x: np.ndarray, y: np.ndarray, lr: float, lam: float) -> tuple[float, State]:
        """One local step; returns the loss (CE + penalty) and the state with trainables updated."""
        ...

    def growth(self, state: State, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Per prunable layer the dense gradient of the CE loss w.r.t. the used weight."""
        ...


class GraphRunner:
    """Shared adapter logic; subclasses provide ``_open(path)`` and ``_run(handle, feed)``."""

    def __init__(self, manifest: Manifest, directory: str | Path):
        verify(manifest, directory)
        self.manifest = manifest
        self.handles = {entry.graph: self._open(Path(directory) / entry.name) for entry in manifest.files}

    def _open(self, path: Path):
        raise NotImplementedError

    def _run(self, handle, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def _feed(self, state: State, x: np.ndarray, y: np.ndarray, lr: float, lam: float) -> dict[str, np.ndarray]:
        values = {**state, "x": x, "y": y, "lr": np.float32(lr), "lam": np.float32(lam)}
        feed = {}
        for spec in self.manifest.inputs:
            if spec.name not in values:
                raise KeyError(f"state has no input {spec.name!r}")
            array = np.require(np.asarray(values[spec.name], dtype=spec.dtype), requirements="C")  # keeps 0-d
            if list(array.shape) != list(spec.shape):
                raise ValueError(f"input {spec.name!r}: shape {list(array.shape)}, graph expects {spec.shape}")
            feed[spec.name] = array
        return feed

    def step(self, state: State, x: np.ndarray, y: np.ndarray, lr: float, lam: float) -> tuple[float, State]:
        outputs = self._run(self.handles["step"], self._feed(state, x, y, lr, lam))
        names = self.manifest.outputs["step"]
        updated = dict(state)
        for name, value in zip(names[1:], outputs[1:], strict=True):
            updated[name.removeprefix("next.")] = value
        return float(outputs[0]), updated

    def growth(self, state: State, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._run(self.handles["growth"], self._feed(state, x, y, 0.0, 0.0))
        names = self.manifest.outputs["growth"][1:]
        return {name.removeprefix("grad."): value for name, value in zip(names, outputs[1:], strict=True)}


def adapter(runtime: str):
    if runtime not in ADAPTERS:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {sorted(ADAPTERS)}")
    return importlib.import_module(f"{__package__}.{ADAPTERS[runtime]}")


def load_runner(path: str | Path, runtime: str | None = None) -> StepRunner:
    """Open the export in ``path`` (a directory or its manifest.json), checking every file's hash."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    manifest = Manifest.load(path)
    if runtime is not None and runtime != manifest.runtime:
        raise ValueError(f"{directory} holds a {manifest.runtime} export, not {runtime}")
    return adapter(manifest.runtime).Runner(manifest, directory)
