"""The client's artifact store: exported graphs received from the server, kept by content hash.

The server sends the manifest every round and each file only once; the store writes a received
file to ``<root>/<sha256>`` (atomically, checked against its manifest entry), refuses files the
manifest does not list, verifies size and sha256 of every file before a graph is opened, and keeps
opened graphs per file hash across rounds. A missing or corrupted file is an ``ArtifactError``
naming the file and both hashes: the client answers with an error and the server resends.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from fedmef.manifest import ArtifactError, Manifest, verify_file

from .rounds import GraphBackend
from .runtimes import Run, open_graph


def default_root(node_id: int) -> Path:
    return Path(os.environ.get("FEDMEF_CLIENT_CACHE", Path(tempfile.gettempdir()) / "fedmef-client")) / str(node_id)


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.opened: dict[tuple[str, str], Run] = {}

    def receive(self, manifest: Manifest, files: dict[str, np.ndarray]) -> None:
        """Store the files that came with the message; each must be listed in the manifest and match it."""
        by_name = {entry.name: entry for entry in manifest.files}
        for name, data in files.items():
            if name not in by_name:
                raise ArtifactError(f"{name}: sent by the server but not listed in the manifest")
            entry = by_name[name]
            self.root.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                out.write(np.asarray(data, dtype=np.uint8).tobytes())
            try:
                verify_file(entry, Path(tmp))
            except ArtifactError:
                os.unlink(tmp)
                raise
            os.replace(tmp, self.root / entry.sha256)

    def backend(self, manifest: Manifest) -> GraphBackend:
        """The manifest's graphs, every file verified first (opened once per file hash and runtime)."""
        for entry in manifest.files:
            verify_file(entry, self.root / entry.sha256)
        graphs = {}
        for graph in manifest.graphs:
            entry = manifest.file(graph)
            key = (entry.sha256, graph)
            if key not in self.opened:
                self.opened[key] = open_graph(manifest, graph, self.root / entry.sha256)
            graphs[graph] = self.opened[key]
        return GraphBackend(manifest, graphs)
