"""Data sets and federated partitions (FedMef §4.1 setup).

* ``digits`` — scikit-learn's 8x8 handwritten digits, embedded in the package: no download.
* ``cifar10`` — CIFAR-10 from a local directory in its standard python-pickle format
  (``data_batch_1..5``, ``test_batch``: dicts with ``b"data"`` (N, 3072) uint8 and ``b"labels"``).

Clients' shares come from ``flwr-datasets`` partitioners (Dirichlet over labels, or IID) applied
to the training split; each share is split again into local train/validation. The central test
set is never partitioned. All arrays are float32 NCHW, normalised per channel with statistics of
the training split.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, C, H, W) float32
    y: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> Split:
        return Split(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class ClientData:
    train: Split
    validation: Split


def load_dataset(name: str, data_path: str = "", test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """(train, test) splits of a data set, normalised with training statistics."""
    if name == "digits":
        train, test = _digits(test_fraction, seed)
    elif name == "cifar10":
        train, test = _cifar10(Path(data_path))
    else:
        raise ValueError(f"unknown dataset {name!r}; choose 'digits' or 'cifar10'")
    mean = train.x.mean(axis=(0, 2, 3), keepdims=True)
    std = train.x.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return Split((train.x - mean) / std, train.y), Split((test.x - mean) / std, test.y)


def _digits(test_fraction: float, seed: int) -> tuple[Split, Split]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(len(y) * (1 - test_fraction)))
    return Split(x[order[:cut]], y[order[:cut]]), Split(x[order[cut:]], y[order[cut:]])


def _cifar10(root: Path) -> tuple[Split, Split]:
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {root} (expected data_batch_1..5 and test_batch)")
    train_files = sorted(root.glob("data_batch_*"))
    if not train_files or not (root / "test_batch").is_file():
        raise FileNotFoundError(f"{root} holds no CIFAR-10 python batches (data_batch_*, test_batch)")
    train = [_cifar_batch(path) for path in train_files]
    return Split(np.concatenate([s.x for s in train]), np.concatenate([s.y for s in train])), _cifar_batch(
        root / "test_batch"
    )


def _cifar_batch(path: Path) -> Split:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data, labels = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (needs b'data' and b'labels')") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    x = data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return Split(x, labels)


def partition_indices(
    labels: np.ndarray, num_partitions: int, partition_id: int, scheme: str, alpha: float, seed: int
) -> np.ndarray:
    """Indices of one client's share of the training split, via flwr-datasets partitioners."""
    # imported here: flwr-datasets pulls in its plotting stack (~3 s), which a client needs once
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner

    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition id {partition_id} outside 0..{num_partitions - 1}")
    if scheme == "dirichlet":
        min_size = min(10, len(labels) // (2 * num_partitions))
        partitioner = DirichletPartitioner(num_partitions, "label", alpha, min_partition_size=min_size, seed=seed)
    elif scheme == "iid":
        partitioner = IidPartitioner(num_partitions)
    else:
        raise ValueError(f"unknown partition scheme {scheme!r}; choose 'dirichlet' or 'iid'")
    partitioner.dataset = Dataset.from_dict({"label": labels, "row": np.arange(len(labels))})
    return np.asarray(partitioner.load_partition(partition_id)["row"], dtype=np.int64)


def client_data(
    train: Split, num_partitions: int, partition_id: int, scheme: str, alpha: float,
    validation_fraction: float, seed: int,
) -> ClientData:  # fmt: skip
    """One client's local train/validation split."""
    rows = partition_indices(train.y, num_partitions, partition_id, scheme, alpha, seed)
    rows = np.random.default_rng(seed + partition_id).permutation(rows)
    cut = len(rows) - int(len(rows) * validation_fraction)
    return ClientData(train.subset(rows[:cut]), train.subset(rows[cut:]))
