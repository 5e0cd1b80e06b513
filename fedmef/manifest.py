"""The manifest: the one contract between the exporter and every client (Python, Java, Android).

A versioned JSON document (``docs/protocol.md`` §6, JSON Schema in ``manifest.schema.json`` beside
this file) naming the runtime, every graph input once (``tensors``: name, role, dtype, shape and,
for a prunable layer's tensors, the layer and its dense shape), each graph's file, input order and
outputs, and every file's sha256 and size. ``verify`` checks files on disk against it before a
client loads anything. No torch, no Flower: clients import this module alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

SCHEMA_VERSION = 2
FILENAME = "manifest.json"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


class ArtifactError(RuntimeError):
    """An exported file is missing or does not match its manifest entry."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    role: str
    dtype: str  # numpy dtype name
    shape: tuple[int, ...]
    layer: str | None = None  # the prunable layer whose wire arrays (v/ m/ x/) feed this tensor
    dense_shape: tuple[int, ...] | None = None
    of: str | None = None  # an ``update`` output: the input it replaces

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items() if value is not None}  # fmt: skip

    @staticmethod
    def from_dict(data: dict) -> TensorSpec:
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        if data.get("dense_shape") is not None:
            data["dense_shape"] = tuple(data["dense_shape"])
        return TensorSpec(**data)


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Graph:
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass
class Manifest:
    runtime: str
    batch_size: int
    tensors: list[TensorSpec]
    graphs: dict[str, Graph]
    files: list[FileEntry]
    key: dict = field(default_factory=dict)  # the exporter's graph key: opaque to clients
    export_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        names = [t.name for t in self.tensors]
        if len(set(names)) != len(names):
            raise ValueError("manifest tensors have duplicate names")
        files = {entry.name for entry in self.files}
        for name, graph in self.graphs.items():
            unknown = [i for i in graph.inputs if i not in names]
            if unknown:
                raise ValueError(f"graph {name!r} takes inputs {unknown} that are not in the manifest's tensors")
            if graph.file not in files:
                raise ValueError(f"graph {name!r} names file {graph.file!r}, which is not in the manifest's files")

    def tensor(self, name: str) -> TensorSpec:
        return self._by_name[name]

    @property
    def _by_name(self) -> dict[str, TensorSpec]:
        return {t.name: t for t in self.tensors}

    def inputs(self, graph: str) -> list[TensorSpec]:
        """The graph's inputs in feeding order."""
        return [self._by_name[name] for name in self.graphs[graph].inputs]

    def file(self, graph: str) -> FileEntry:
        name = self.graphs[graph].file
        return next(entry for entry in self.files if entry.name == name)

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version, "runtime": self.runtime, "batch_size": self.batch_size,
            "tensors": [t.to_dict() for t in self.tensors],
            "graphs": {name: {"file": g.file, "inputs": list(g.inputs), "outputs": [o.to_dict() for o in g.outputs]}
                       for name, g in self.graphs.items()},
            "files": [asdict(entry) for entry in self.files],
            "key": self.key, "export_seconds": self.export_seconds, "peak_memory_bytes": self.peak_memory_bytes,
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        """Parse and validate (schema version first, then the JSON Schema, then cross-references)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"manifest is not JSON: {err}") from None
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise ValueError(f"manifest schema version {version!r}, this client reads {SCHEMA_VERSION}")
        try:
            jsonschema.validate(data, schema())
        except jsonschema.ValidationError as err:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            raise ValueError(f"malformed manifest at {where}: {err.message}") from None
        graphs = {
            name: Graph(g["file"], tuple(g["inputs"]), tuple(TensorSpec.from_dict(o) for o in g["outputs"]))
            for name, g in data["graphs"].items()
        }
        return Manifest(
            runtime=data["runtime"], batch_size=data["batch_size"],
            tensors=[TensorSpec.from_dict(t) for t in data["tensors"]], graphs=graphs,
            files=[FileEntry(**f) for f in data["files"]], key=data.get("key", {}),
            export_seconds=data.get("export_seconds", 0.0), peak_memory_bytes=data.get("peak_memory_bytes"),
        )  # fmt: skip

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_text(self.to_json())
        return path

    @staticmethod
    def load(path: str | Path) -> Manifest:
        path = Path(path)
        return Manifest.from_json((path / FILENAME if path.is_dir() else path).read_text())


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> FileEntry:
    return FileEntry(path.name, sha256_of(path), path.stat().st_size)


def verify_file(entry: FileEntry, path: Path) -> None:
    """Raise ``ArtifactError`` naming the file when it is missing or differs from its entry."""
    if not path.is_file():
        raise ArtifactError(f"{entry.name}: missing (expected sha256 {entry.sha256})")
    if path.stat().st_size != entry.size:
        raise ArtifactError(f"{entry.name}: size mismatch, expected {entry.size}, got {path.stat().st_size}")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ArtifactError(f"{entry.name}: sha256 mismatch, expected {entry.sha256}, got {actual}")


def verify(manifest: Manifest, directory: str | Path) -> None:
    for entry in manifest.files:
        verify_file(entry, Path(directory) / entry.name)
