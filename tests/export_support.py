"""Shared helpers of the export tests: seeded models with masks, batches, exported and eager rounds."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from export.exporter import export
from export.layout import GraphKey
from fedmef import extrusion, protocol, wire
from fedmef.manifest import Manifest
from fedmef.models import effective_weights, prunable_layers, set_masks
from fedmef.sparsity import random_masks
from fedmef.training import LocalPlan, growth_signal, local_train
from python_client.artifacts import ArtifactStore
from python_client.rounds import GraphBackend

DENSITY = 0.3


def keyed_model(key: GraphKey, seed: int = 0) -> tuple[GraphKey, torch.nn.Module]:
    """A model of ``key``'s architecture with seeded weights and ERK masks; the key gets its nnz."""
    torch.manual_seed(seed)
    model = replace(key, layer_nnz=()).build()
    layers = prunable_layers(model)
    density = 1.0 if key.layout == "dense" else DENSITY
    masks = random_masks({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density,
                         torch.Generator().manual_seed(seed))  # fmt: skip
    set_masks(model, masks)
    with torch.no_grad():
        for module in model.modules():  # SkipInit starts at 0; make residual branches count
            if hasattr(module, "alpha"):
                module.alpha.fill_(0.5)
    nnz = tuple((n, int(layer.mask.sum())) for n, layer in layers.items())
    return replace(key, layer_nnz=nnz), model


def batch(key: GraphKey, seed: int = 1, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    n = count or key.batch_size
    x = gen.standard_normal((n, *key.input_shape)).astype(np.float32)
    return x, gen.integers(0, key.num_classes, n).astype(np.int64)


def marked_sets(model: torch.nn.Module, fraction: float = 0.2) -> dict[str, torch.Tensor]:
    """The server's marked sets: the smallest effective weights."""
    masks = {n: layer.mask.bool() for n, layer in prunable_layers(model).items()}
    return extrusion.marked_sets(effective_weights(model), masks, fraction)


def exported_backend(key: GraphKey, directory: Path, runtime: str) -> GraphBackend:
    """Export ``key`` for ``runtime`` and open it the way a client does (store, verify, open)."""
    export(key, directory / "export", runtime)
    return open_export(directory / "export", directory / "store")


def open_export(directory: Path, store_dir: Path) -> GraphBackend:
    """The export in ``directory`` received and opened by a client's artifact store."""
    manifest = Manifest.load(directory)
    store = ArtifactStore(store_dir)
    store.receive(manifest, {e.name: np.fromfile(directory / e.name, dtype=np.uint8) for e in manifest.files})
    return store.backend(manifest)


def eager_round(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, plan: LocalPlan) -> tuple[dict, float]:
    """The reference round on a copy of ``model``: (update arrays, mean loss)."""
    model = copy.deepcopy(model)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    loss = local_train(model, xs, ys, plan)
    update = wire.encode_state(model, with_masks=False)
    if plan.growth_counts:
        batch_index = torch.from_numpy(protocol.growth_batch(len(x), plan.batch_size, plan.seed))
        update |= wire.encode_growth(growth_signal(model, xs[batch_index], ys[batch_index], plan.growth_counts))
    return update, loss


def assert_close_state(actual: dict, expected: dict, names, rtol: float = 1e-4) -> None:
    for name in names:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        assert a.shape == e.shape, f"{name}: shape {a.shape}, expected {e.shape}"
        if not e.size:
            continue
        scale = max(float(np.abs(e).max()), 1e-6)
        err = float(np.abs(a - e).max()) / scale
        assert err <= rtol, f"{name}: relative error {err:.2e} > {rtol}"
