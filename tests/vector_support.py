"""Reading the shared test vectors (``tests/vectors/``) in Python tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fedmef import partitions
from fedmef import protocol as p
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


def assert_update_matches(actual: dict, expected: dict, atol: float = 1e-5) -> None:
    """Two clients' updates agree: same keys, dtypes and shapes, arrays within ``atol``, growth as below."""
    assert sorted(actual) == sorted(expected)
    for key, want in expected.items():
        got = actual[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        if not key.startswith(p.GROWTH_INDICES):
            np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=key)
    assert_same_growth(actual, expected, atol)


def assert_same_growth(actual: dict, expected: dict, atol: float) -> None:
    """Growth indices agree up to near-ties of their magnitudes.

    They are the largest inactive gradients, ties broken by position. Two runtimes' gradients differ in
    the last float bits, so two candidates whose magnitudes differ by less than that may swap places, or
    one may replace the other at the cut-off. Allowed only there: every index both sides chose carries
    the same magnitude (within ``atol``) on both, and one chosen on a side only sits at that side's cut-off.
    """
    for layer in p.with_prefix(p.GROWTH_INDICES, expected):
        key = p.GROWTH_INDICES + layer
        chosen = dict(zip(actual[key].tolist(), actual[p.GROWTH_MAGNITUDES + layer].tolist(), strict=True))
        wanted = dict(zip(expected[key].tolist(), expected[p.GROWTH_MAGNITUDES + layer].tolist(), strict=True))
        assert len(chosen) == len(wanted), key
        both = chosen.keys() & wanted.keys()
        for index in both:
            assert abs(chosen[index] - wanted[index]) <= atol, f"{key}[{index}]: {chosen[index]} vs {wanted[index]}"
        for side in (chosen, wanted):
            cut_off = min(side.values(), default=0.0)
            for index in side.keys() - both:
                assert side[index] - cut_off <= atol, f"{key}: {index} chosen on one side only, above the cut-off"
