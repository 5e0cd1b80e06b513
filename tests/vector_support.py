"""Reading the shared test vectors (``tests/vectors/``) in Python tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fedmef import partitions
from fedmef.data import ClientData

VECTORS = Path(__file__).resolve().parent / "vectors"
ROUND = VECTORS / "round"
ARTIFACTS = VECTORS / "artifacts"


def read_arrays(directory: Path) -> dict[str, np.ndarray]:
    paths = sorted(directory.rglob("*.npy"))
    return {str(path.relative_to(directory).with_suffix("")): np.load(path) for path in paths}


def load_round(root: Path = ROUND) -> tuple[dict[str, np.ndarray], dict, ClientData]:
    """The train instruction's state and plan, and the client's partition."""
    if not (ARTIFACTS / "manifest.json").is_file():
        raise FileNotFoundError(f"{ARTIFACTS} has no export: run `make vectors` (or `make test`) first")
    return read_arrays(root / "state"), json.loads((root / "plan.json").read_text()), partitions.load(root / "data")
