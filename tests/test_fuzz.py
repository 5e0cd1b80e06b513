"""Fuzzing (hypothesis): the validator and the parsers of wire data raise only their documented
errors, and the validator tells honest replies from corrupted ones. The properties live in
``tests/fuzz_strategies.py``; ``benchmarks/fuzz.py`` runs them with 10,000 examples each."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzz_strategies import PROPERTIES

CI = settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_property(name):
    strategy, check = PROPERTIES[name]
    CI(given(strategy)(check))()
