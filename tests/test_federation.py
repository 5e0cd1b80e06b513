"""End to end: a real ``flwr run`` simulation on digits, and the package layout under every loader.

The federation test runs 3 rounds with an adjustment at round 2 (extrusion in rounds 1-2) and
checks the run directory: metrics, constant per-layer nnz with changed masks, accuracy above
chance, and that the code ran from Flower's unpacked app, not from the checkout.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.task import initial_model
from server import launch

ROOT = Path(__file__).resolve().parent.parent


def test_three_round_federation(flower_env):
    overrides = {
        "num-rounds": 3, "adjust-interval": 2, "adjust-end-fraction": 1.0, "extrusion-rounds": 2,
        "clients-per-round": 4, "local-epochs": 1,
    }  # fmt: skip
    pairs = [f"{k}={v}" for k, v in overrides.items()] + [f"output-dir={flower_env / 'runs'}"]
    log = io.StringIO()
    run_dir = launch.run(ROOT, supernodes=4, overrides=pairs, stream=log)

    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["round"]) for r in rows] == [1, 2, 3]
    assert [int(r["extruding"]) for r in rows] == [1, 1, 0]
    assert [int(r["adjusted"]) for r in rows] == [0, 1, 0]
    assert all(int(r["clients"]) == 4 and int(r["failures"]) == 0 for r in rows)
    assert float(rows[-1]["accuracy"]) > 0.3  # chance is 0.1
    assert all(0 < int(r["bytes_up"]) < 0.25 * 4 * int(r["dense_bytes"]) for r in rows)
    assert "round   3/3" in log.getvalue()
    exports = list((flower_env / "runs" / "export-cache").glob("onnxruntime-*/step.onnx"))
    assert len(exports) == 1, "default backend is ort, exported once and reused after round 1"
    assert all(float(r["export_seconds"]) < 0.25 * float(rows[0]["export_seconds"]) for r in rows[1:])
    assert "federated validation accuracy" in log.getvalue()
    assert "over 4 clients" in log.getvalue()

    config = RunConfig.from_run_config(overrides)
    start = {name: layer.mask.clone() for name, layer in prunable_layers(initial_model(config)).items()}
    final = torch.load(run_dir / "model.pt")
    changed = 0
    for name, mask in start.items():
        end = final[f"{name}.mask"]
        assert int(end.sum()) == int(mask.sum()), f"{name}: nnz changed"
        assert torch.all(final[f"{name}.weight"][end == 0] == 0)
        changed += int((end != mask).sum())
    assert changed > 0, "the adjustment at round 2 changed no mask"

    resolved = json.loads((run_dir / "config.json").read_text())
    assert Path(resolved["code-location"]).is_relative_to(Path(os.environ["FLWR_HOME"]) / "apps")
    for name in ("accuracy.png", "density.png", "report.md"):
        assert (run_dir / name).stat().st_size > 0


def test_executorch_federation(flower_env):
    """The ExecuTorch backend is one switch away: a short run completes and learns."""
    pairs = ["backend=executorch", "num-rounds=2", "local-epochs=1", f"output-dir={flower_env / 'runs'}"]
    run_dir = launch.run(ROOT, supernodes=2, overrides=pairs, stream=io.StringIO())
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["clients"]) for r in rows] == [2, 2]
    assert float(rows[-1]["accuracy"]) > 0.3
    assert float(rows[1]["export_seconds"]) < 0.25 * float(rows[0]["export_seconds"])  # a cache hit vs an export
    manifests = list((flower_env / "runs" / "export-cache").glob("executorch-*/manifest.json"))
    assert len(manifests) == 1  # exported once, reused in round 2


def test_failed_run_is_reported(flower_env):
    """flwr run exits 0 when the ServerApp raises; the launcher must not."""
    missing = flower_env / "no-cifar"
    log = io.StringIO()
    with pytest.raises(RuntimeError, match="did not finish"):
        launch.run(
            ROOT, supernodes=2, overrides=["num-rounds=1", "dataset=cifar10", f"data-path={missing}"], stream=log
        )
    assert "CIFAR-10 directory not found" in log.getvalue()


@pytest.mark.parametrize(
    ("override", "message"),
    [("density=0.0", "density"), ("method=fedfoo", "method"), ("num-rounds=-3", "num-rounds"), ("lr=fast", "lr")],
)
def test_bad_run_config_fails_before_flower_starts(flower_env, override, message):
    with pytest.raises(ValueError, match=message):
        launch.run(ROOT, supernodes=2, overrides=[override], stream=io.StringIO())
    assert not (flower_env / "flwr").exists() or not any((flower_env / "flwr").iterdir())


def _import_location(path_entry: Path) -> str:
    code = "import server.server_app, python_client.client_app as c; print(c.__file__)"
    program = f"import sys; sys.path.insert(0, {str(path_entry)!r}); {code}"
    return subprocess.run([sys.executable, "-c", program], check=True, capture_output=True, text=True).stdout.strip()


def test_every_module_has_one_import_name():
    """No import hook: the folders are plain packages that static tools can follow."""
    assert "meta_path" not in (ROOT / "fedmef" / "__init__.py").read_text()
    code = "import server.server_app, sys; print(sorted(m for m in sys.modules if m.startswith('fedmef.server')))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_namespace_from_app_directory(tmp_path):
    """Flower's layout: the repository's files unpacked in a directory first on sys.path."""
    app = tmp_path / "app"
    for folder in ("fedmef", "server", "python_client", "export"):
        shutil.copytree(ROOT / folder, app / folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert _import_location(app) == str(app / "python_client" / "client_app.py")


def test_namespace_from_regular_install(tmp_path):
    """A non-editable install ships the same four packages under the same import names."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert _import_location(target) == str(target / "python_client" / "client_app.py")
    assert (target / "fedmef" / "manifest.schema.json").is_file(), "the schema ships with the package"


def test_launcher_expands_overlays(tmp_path):
    overlay = tmp_path / "variant.toml"
    overlay.write_text('method = "server-dst"\nnum-rounds = 7\nlr = 0.5\n')
    expanded = launch.expand_overlays([str(overlay), "num-rounds=9"])
    assert expanded == ['method="server-dst"', "num-rounds=7", "lr=0.5", "num-rounds=9"]
    for shipped in sorted((ROOT / "conf").glob("*.toml")):  # every shipped overlay is a valid config
        launch.check_config(ROOT, [launch.toml_pair(p) for p in launch.expand_overlays([str(shipped), "data-path=/x"])])
    with pytest.raises(SystemExit, match="not found"):
        launch.expand_overlays([str(tmp_path / "missing.toml")])


def test_launcher_quotes_bare_words():
    assert launch.toml_pair("method=feddst") == 'method="feddst"'
    assert launch.toml_pair("num-rounds=3") == "num-rounds=3"
    assert launch.toml_pair("lr=0.1") == "lr=0.1"
    with pytest.raises(SystemExit):
        launch.toml_pair("no-equals-sign")
