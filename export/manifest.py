"""The manifest: the one contract between the exporter and every client (Python, Android).

A versioned JSON document naming the runtime, the graph key (model, method flags, shapes, per
layer nnz), every graph input (name, shape, dtype, role) and output, every file with its sha256
and size, hyperparameters, export time and an optional measured peak memory. ``verify`` checks
the files on disk against it before a client loads anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
RUNTIMES = ("onnxruntime", "executorch")
FILENAME = "manifest.json"


class ArtifactError(RuntimeError):
    """An exported file is missing or does not match its manifest entry."""


@dataclass(frozen=True)
class FileEntry:
    name: str
    graph: str  # "step" or "growth"
    sha256: str
    size: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: list[int]
    dtype: str
    role: str  # trainable | positions | mask | marked | data
    dense_shape: list[int] | None = None


@dataclass
class Manifest:
    runtime: str
    key: dict
    inputs: list[TensorEntry]
    outputs: dict[str, list[str]]  # graph -> output names; outputs[0] is the loss
    files: list[FileEntry]
    round: int = 0
    form: str = "step"
    export_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    hyperparameters: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"manifest schema version {self.schema_version}, this code reads {SCHEMA_VERSION}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        names = [t.name for t in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError("manifest inputs have duplicate names")
        for entry in self.files:
            if len(entry.sha256) != 64 or entry.size < 0:
                raise ValueError(f"file entry {entry.name!r} has a malformed sha256 or size")
            if entry.graph not in self.outputs:
                raise ValueError(f"file {entry.name!r} is for graph {entry.graph!r}, which has no outputs listed")

    def file(self, graph: str) -> FileEntry:
        for entry in self.files:
            if entry.graph == graph:
                return entry
        raise KeyError(f"manifest has no file for graph {graph!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        data = json.loads(text)
        try:
            data["inputs"] = [TensorEntry(**t) for t in data["inputs"]]
            data["files"] = [FileEntry(**f) for f in data["files"]]
            return Manifest(**data)
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed manifest: {err}") from err

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_text(self.to_json())
        return path

    @staticmethod
    def load(path: str | Path) -> Manifest:
        path = Path(path)
        return Manifest.from_json((path / FILENAME if path.is_dir() else path).read_text())


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path, graph: str) -> FileEntry:
    return FileEntry(path.name, graph, sha256_of(path), path.stat().st_size)


def verify(manifest: Manifest, directory: str | Path) -> None:
    """Raise ``ArtifactError`` naming the first file that is missing or differs from the manifest."""
    for entry in manifest.files:
        path = Path(directory) / entry.name
        if not path.is_file():
            raise ArtifactError(f"{entry.name}: missing from {directory} (expected sha256 {entry.sha256})")
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise ArtifactError(f"{entry.name}: sha256 mismatch, expected {entry.sha256}, got {actual}")
        if path.stat().st_size != entry.size:
            raise ArtifactError(f"{entry.name}: size mismatch, expected {entry.size}, got {path.stat().st_size}")
