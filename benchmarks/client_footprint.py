"""What a Python client costs to start and to run one round: import time and peak resident memory.

Each measurement runs in a fresh interpreter: (1) importing the ClientApp module, (2) that plus
one train round of the default run (FedMef, SmallCNN on digits, an extrusion + adjustment round)
with the exported graphs in ONNX Runtime, (3) the same round with the eager ``torch`` backend.

    python benchmarks/client_footprint.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHILD = """
import json, pickle, sys, time
start = time.perf_counter()
from python_client import client_app
imported = time.perf_counter() - start
result = {"import_s": imported}
if sys.argv[1] != "import":
    from python_client.artifacts import ArtifactStore
    config, state, plan, files = pickle.load(open(sys.argv[2], "rb"))
    backend = {"ort": config, "torch": config.__class__(**{**config.__dict__, "backend": "torch"})}[sys.argv[1]]
    start = time.perf_counter()
    client_app.local_round(backend, {"partition-id": 0, "num-partitions": 10}, ArtifactStore(sys.argv[3]),
                           state, plan, files)
    result["round_s"] = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
result["max_rss_mb"] = int(hwm.split()[1]) / 1024
result["torch_loaded"] = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "executorch", "export"})
print(json.dumps(result))
"""


def round_inputs(work: Path) -> Path:
    from fedmef import protocol as p
    from fedmef import wire
    from fedmef.config import RunConfig
    from fedmef.task import initial_model
    from server.artifacts import RoundExporter
    from server.schedule import local_plan, round_phase

    config = RunConfig(output_dir=str(work))  # the default run; round 10 extrudes and adjusts
    model = initial_model(config)
    plan, marked = wire.encode_plan(local_plan(config, round_phase(config, 10), model), 10)
    manifest, directory, _ = RoundExporter(config, work / "cache").export(model)
    files = {p.FILE + e.name: np.fromfile(directory / e.name, dtype=np.uint8) for e in manifest.files}
    path = work / "round.pkl"
    with open(path, "wb") as out:
        pickle.dump((config, wire.encode_state(model) | marked, plan | {p.MANIFEST: manifest.to_json()}, files), out)
    return path


def measure(mode: str, inputs: Path, work: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=work) as store:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(inputs), store], capture_output=True, text=True,
                             check=True, cwd=work, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "client_footprint.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = round_inputs(work)
        for mode, label in [("import", "import the ClientApp"), ("ort", "import + one round, ort backend"),
                            ("torch", "import + one round, torch backend")]:  # fmt: skip
            runs = [measure(mode, inputs, work) for _ in range(args.repeats)]
            rows.append((label, statistics.median(r["import_s"] for r in runs),
                         statistics.median(r.get("round_s", 0.0) for r in runs),
                         max(r["max_rss_mb"] for r in runs), runs[0]["torch_loaded"]))  # fmt: skip
    lines = ["| what | import (s) | round (s) | peak RSS (MB) | torch/export modules loaded |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {imp:.2f} | {rnd:.2f} | {rss:.0f} | {', '.join(loaded) or 'none'} |"
              for label, imp, rnd, rss, loaded in rows]
    text = (f"# Client footprint\n\nCommand: `python benchmarks/client_footprint.py {' '.join(sys.argv[1:])}`; "
            f"median of {args.repeats} fresh processes (peak RSS: the largest); load average (1 min) at the end: "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n\n" + "\n".join(lines) + "\n")  # fmt: skip
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
