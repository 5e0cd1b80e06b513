"""The handle on the ONNX Runtime training worker (``ort_training_worker.py``) in its own venv.

``onnxruntime-training-cpu`` cannot share the main venv (it installs the same ``onnxruntime`` module as
the pinned 1.29), so ``make setup`` builds ``.venv-ort-training`` beside ``.venv`` from
``requirements-ort-training.lock``, and both the exporter and the ``ort-training`` client backend send
requests to a worker process started with that venv's interpreter. ``FEDMEF_ORT_TRAINING_PYTHON``
names another interpreter. A missing venv is a clear error naming the make target, never a skip.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

VENV = ".venv-ort-training"
WORKER = Path(__file__).with_name("ort_training_worker.py")


def interpreter() -> Path:
    """The training venv's python: ``$FEDMEF_ORT_TRAINING_PYTHON``, else ``.venv-ort-training`` beside the
    running venv (``make setup`` creates both in the checkout)."""
    if os.environ.get("FEDMEF_ORT_TRAINING_PYTHON"):
        return Path(os.environ["FEDMEF_ORT_TRAINING_PYTHON"])
    return Path(sys.prefix).parent / VENV / "bin" / "python"


class WorkerError(RuntimeError):
    """The worker could not be started or answered a request with an error."""


class Worker:
    """One worker process; requests are serialised (one at a time) and the process ends with ours."""

    def __init__(self) -> None:
        python = interpreter()
        if not python.is_file():
            raise WorkerError(
                f"the ONNX Runtime training venv is missing: no interpreter at {python}. "
                f"Create it with `make ort-training` (part of `make setup`) or set FEDMEF_ORT_TRAINING_PYTHON"
            )
        # -I: neither our PYTHONPATH nor user site-packages reach the worker's interpreter
        self.process = subprocess.Popen([str(python), "-I", str(WORKER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)  # fmt: skip
        self.lock = threading.Lock()
        atexit.register(self.close)
        self.versions = self._answer()[0]

    def request(self, op: str, arrays: dict[str, np.ndarray] | None = None, **fields) -> tuple[dict, dict]:
        """Send one request; (header, arrays) of the answer, or ``WorkerError`` with the worker's message."""
        buffer = io.BytesIO()
        if arrays:
            np.savez(buffer, **arrays)
        with self.lock:
            try:
                header = json.dumps({"op": op, **fields, "arrays": buffer.tell()}).encode()
                self.process.stdin.write(header + b"\n" + buffer.getvalue())
                self.process.stdin.flush()
            except BrokenPipeError:
                raise WorkerError(f"the ORT training worker exited (code {self.process.poll()})") from None
            header, answer = self._answer()
        if not header.get("ok"):
            raise WorkerError(f"ORT training worker, {op}: {header.get('error')}")
        return header, answer

    def _answer(self) -> tuple[dict, dict]:
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(f"the ORT training worker exited (code {self.process.wait()}); see its stderr")
        header = json.loads(line)
        size = int(header.get("arrays", 0))
        data = self.process.stdout.read(size) if size else b""
        return header, dict(np.load(io.BytesIO(data))) if size else {}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # end of input ends the worker
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_worker: Worker | None = None
_started = threading.Lock()


def worker() -> Worker:
    """The process's worker, started on first use and restarted if it died."""
    global _worker
    with _started:
        if _worker is None or _worker.process.poll() is not None:
            _worker = Worker()
        return _worker
