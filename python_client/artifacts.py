"""The client's artifact store: exported graphs received from the server, kept by content hash.

The server sends a round's manifest every round and the files only the first time; the store
writes received files under ``<root>/<sha256 prefix>/<name>``, assembles the manifest's files in a
directory and hands it to ``load_runner``, which verifies every hash before anything is loaded. A
missing or corrupted file is an ``ArtifactError`` naming the file and both hashes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from fedmef.export.manifest import ArtifactError, Manifest
from fedmef.export.runtime import StepRunner, load_runner


def default_root(node_id: int) -> Path:
    return Path(os.environ.get("FEDMEF_CLIENT_CACHE", Path(tempfile.gettempdir()) / "fedmef-client")) / str(node_id)


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def receive(self, manifest: Manifest, files: dict[str, np.ndarray]) -> None:
        """Store the files of ``manifest`` that came with the message (checked on load)."""
        by_name = {entry.name: entry for entry in manifest.files}
        for name, data in files.items():
            if name not in by_name:
                raise ArtifactError(f"{name}: sent by the server but not listed in the manifest")
            target = self.root / by_name[name].sha256[:16] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            np.asarray(data, dtype=np.uint8).tofile(tmp)
            os.replace(tmp, target)

    def runner(self, manifest: Manifest) -> StepRunner:
        """Load the manifest's graphs, verifying every file's sha256 first."""
        key = hashlib.sha256(manifest.to_json().encode()).hexdigest()[:16]
        directory = self.root / "manifests" / key
        directory.mkdir(parents=True, exist_ok=True)
        for entry in manifest.files:
            link = directory / entry.name
            source = self.root / entry.sha256[:16] / entry.name
            if not source.is_file():
                raise ArtifactError(f"{entry.name}: not received (expected sha256 {entry.sha256}); ask for a resend")
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source)
        manifest.save(directory)
        return load_runner(directory, manifest.runtime)
