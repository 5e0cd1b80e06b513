"""The written contract is enough: a client built from ``docs/protocol.md`` alone matches ours."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from fedmef import protocol as p
from fedmef.manifest import Manifest
from python_client.artifacts import ArtifactStore
from tests.contract_client import Client
from tests.vector_support import ARTIFACTS, load_round

PROJECT_PACKAGES = {"fedmef", "export", "server", "python_client", "tests"}


def test_minimal_client_imports_nothing_of_the_project():
    tree = ast.parse(Path(__file__).with_name("contract_client.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert imported & PROJECT_PACKAGES == set()
    assert "onnxruntime" in imported


def test_minimal_client_sends_the_same_update_bytes_as_the_python_client(tmp_path):
    state, plan, data = load_round()
    manifest = Manifest.load(ARTIFACTS)
    plan = plan | {p.MANIFEST: manifest.to_json()}
    theirs, their_loss = Client(ARTIFACTS).train(state, plan, data.train.x, data.train.y)

    store = ArtifactStore(tmp_path)
    store.receive(manifest, {e.name: np.fromfile(ARTIFACTS / e.name, dtype=np.uint8) for e in manifest.files})
    ours, our_loss = store.backend(manifest).train(state, plan, data.train.x, data.train.y)

    assert sorted(theirs) == sorted(ours)
    for key in ours:
        assert theirs[key].dtype == ours[key].dtype, key
        assert theirs[key].tobytes() == ours[key].tobytes(), key
    assert their_loss == our_loss
    assert json.loads(plan[p.MANIFEST])["schema_version"] == 2
