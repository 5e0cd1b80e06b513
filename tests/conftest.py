"""Fixtures shared by the tests that start Flower processes."""

from __future__ import annotations

import pytest

from .flower_support import free_port
from .loopback_support import Loopback


@pytest.fixture
def flower_env(tmp_path, monkeypatch):
    """A private FLWR_HOME and free SuperLink ports: a user's own local SuperLink, or a test
    running beside this one, is never touched."""
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr"))
    monkeypatch.setenv("FLWR_LOCAL_SUPERLINK_HTTP_API_PORT", str(free_port()))
    monkeypatch.setenv("FLWR_LOCAL_CONTROL_API_PORT", str(free_port()))
    return tmp_path


@pytest.fixture
def loopback(tmp_path):
    """A SuperLink with a database file and SuperNodes on loopback, every process stopped after the test."""
    federation = Loopback(tmp_path)
    try:
        yield federation
    finally:
        federation.close()
