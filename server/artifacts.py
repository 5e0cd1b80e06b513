"""Per-round export on the server and shipping of the artifacts to clients.

Each round the server asks for the training-step graphs of the current model (``GraphKey``: model,
method flags, batch and input shape, per-layer nnz). Prune/grow keeps every layer's nnz, so after
the first round the key is unchanged and ``export_cached`` returns the verified cached export: a
round ships state only. Files go to a client once per graph (tracked per node); a client that lost
them answers with an error and is sent them again next round.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from torch import nn

from export.exporter import export_cached
from export.layout import GraphKey
from fedmef import protocol as p
from fedmef.config import BACKEND_RUNTIMES, RunConfig
from fedmef.manifest import Manifest
from fedmef.task import INPUT_SHAPES, NUM_CLASSES


def graph_key(config: RunConfig, model: nn.Module) -> GraphKey:
    return GraphKey.for_model(
        model, config.model, config.batch_size, INPUT_SHAPES[config.dataset], NUM_CLASSES,
        width=config.model_width or None, scaled=config.flags.scaled, keep=config.sap_keep,
        layout="sparse" if config.flags.sparse else "dense", encoding=config.sap_encoding,
        fuse_relu=config.sap_fuse_relu,
        # ExecuTorch's portable conv kernels are slow; convs written as im2col + mm use its optimized mm
        conv="im2col" if config.backend == "executorch" else "direct",
        weight_decay=config.weight_decay, extrusion=config.flags.extrusion, penalty=config.bae_penalty,
    )  # fmt: skip


class RoundExporter:
    def __init__(self, config: RunConfig, cache_dir: Path):
        self.config, self.cache_dir = config, cache_dir
        self.runtime = BACKEND_RUNTIMES[config.backend]
        self.shipped: dict[int, set[str]] = {}

    def export(self, model: nn.Module) -> tuple[Manifest, Path, float]:
        """The round's export (cached when the key is unchanged) and the seconds it took."""
        start = time.perf_counter()
        manifest, directory = export_cached(graph_key(self.config, model), self.cache_dir, self.runtime)
        return manifest, directory, time.perf_counter() - start

    def payload(self, node: int, manifest: Manifest, directory: Path) -> dict[str, np.ndarray]:
        """The files ``node`` has not been sent yet, as ``file/<name>`` byte arrays."""
        sent = self.shipped.setdefault(node, set())
        files = {}
        for entry in manifest.files:
            if entry.sha256 not in sent:
                files[p.FILE + entry.name] = np.fromfile(directory / entry.name, dtype=np.uint8)
        return files

    def delivered(self, node: int, manifest: Manifest) -> None:
        self.shipped.setdefault(node, set()).update(entry.sha256 for entry in manifest.files)

    def forget(self, node: int) -> None:
        """The node failed: send it everything again next time."""
        self.shipped.pop(node, None)
