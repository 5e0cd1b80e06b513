"""The Java "virtual phone" (``android_client/node``) against the Python client.

    python -m benchmarks.java_node federation [--rounds 20] [--nodes 5] [--local-epochs 1]
    python -m benchmarks.java_node memory [--models cnn resnet18] [--batch 64] [--density 0.1] [--keep 0.3]
    python -m benchmarks.java_node report

``federation``: two deployed federations with the same run config on a SuperLink on loopback, one
of Java nodes (``fedmef-node.jar`` on partition directories of ``fedmef.partitions``), one of Python
``flower-supernode`` processes (the same partitions, computed by their ClientApp), started by the
project's launcher (``server.launch.run``). From each run directory's ``metrics.csv``: final
accuracy, seconds per round (the server's round: send, local training, aggregation, evaluation)
and bytes on the wire per node per round.

``memory``: peak resident memory of one training round (one step: a partition of exactly one
batch, one epoch) of the exported step graph, in the JVM (``--replay``: ``Replay.java``) and in
Python (the Python client's ``GraphBackend``), measured the same way in both fresh processes: one
thread, ONNX Runtime's arena and memory patterns off, glibc's mmap threshold fixed (freed
blocks go back to the kernel), the JVM's heap committed and touched at start (``JVM_HEAP``: the
growth is native memory, as in Python), then per round: ``/proc/self/clear_refs`` = 5 (peak RSS := RSS),
RSS before, peak RSS (``VmHWM``) after. The first round opens the graphs (cold); the figure is the
median of the warm rounds. Variants as ``benchmarks/memory.py``: ``fedmef-int32`` (packed sparse
weights, NSConv, SAP, BaE) and ``masked-dense`` (dense weights x mask, plain convs, no extrusion:
the FedDST-style baseline).

Each command writes its JSON in ``benchmarks/results/`` and rebuilds ``results/java_node.md``
from both. Needs the jar (``make java``); work files go to ``benchmarks/work/java_node/``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
JAR = REPO / "android_client" / "node" / "target" / "fedmef-node.jar"
RESULTS = HERE / "results"
WORK = HERE / "work" / "java_node"
BIN = Path(sys.executable).parent
MB = 2**20
#: fixed mmap threshold: blocks >= 128 KiB are mmapped and returned at free, so RSS follows live memory
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
MODELS = {"cnn": (1, 8, 8), "resnet18": (3, 32, 32)}
#: a Java heap committed and touched at start: the RSS growth of a round is then native memory only (ONNX
#: Runtime, the direct buffers holding its inputs, its outputs), as a Python process's is (numpy + ONNX Runtime)
JVM_HEAP = ["-Xms1g", "-Xmx1g", "-XX:+AlwaysPreTouch"]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))  # fmt: skip
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=REPO).stdout.strip()  # fmt: skip
    commit = commit.strip() + (" + local changes" if dirty else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1), "java": java,
            "python": platform.python_version(), "commit": commit}  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- processes ---------------------------------------------------------------------------------------------------


class Processes:
    """Every process started for one federation, each in its own session, stopped by process group."""

    def __init__(self, directory: Path):
        self.directory, self.started = directory, []

    def start(self, name: str, command: list, env: dict | None = None) -> Path:
        log = self.directory / f"{name}.log"
        home = self.directory / name
        home.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            self.started.append(subprocess.Popen([str(c) for c in command], stdout=out, stderr=subprocess.STDOUT,
                                                 env=env, cwd=home, start_new_session=True))  # fmt: skip
        return log

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(log: Path, text: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.3)
    raise TimeoutError(f"{text!r} x{count} not in {log} after {timeout} s")


# --- federation ----------------------------------------------------------------------------------------------------


def run_config(args) -> dict:
    return {"num-rounds": args.rounds, "clients-per-round": args.nodes, "local-epochs": args.local_epochs,
            "backend": "ort", "seed": args.seed, "round-timeout": 300.0}  # fmt: skip


def federation(kind: str, args, work: Path) -> dict:
    """One deployed federation of ``args.nodes`` Java or Python nodes; its figures from metrics.csv."""
    from fedmef import partitions
    from server import launch

    work.mkdir(parents=True, exist_ok=True)
    config = run_config(args)
    processes = Processes(work)
    env = launch.flower_env(work / "flwr")
    port = free_port()
    address = f"127.0.0.1:{port}"
    load_before = load()
    try:
        link = processes.start("superlink", [BIN / "flower-superlink", "--insecure", "--database", ":flwr-in-memory:",
                                             "--disable-runtime-dependency-installation", "--port", str(port)],
                               env=env)  # fmt: skip
        for node in range(args.nodes):
            if kind == "java":
                data = work / f"partition-{node}"
                partitions.main(["--partition-id", str(node), "--num-partitions", str(args.nodes), str(data),
                                 *(f"{k}={v}" for k, v in config.items())])  # fmt: skip
                processes.start(f"java{node}", ["java", "-jar", JAR, "--superlink", address, "--insecure",
                                                "--key", work / f"java{node}" / "key.pem", "--data", data,
                                                "--store", work / f"java{node}" / "store", "--poll-interval", "0.5",
                                                "--partition-id", str(node)])  # fmt: skip
            else:
                node_env = launch.flower_env(work / f"python{node}") | {
                    "FEDMEF_CLIENT_CACHE": str(work / f"python{node}" / "store")}
                processes.start(f"python{node}", [BIN / "flower-supernode", "--insecure", "--superlink", address,
                                                  "--port", str(free_port()), "--node-config",
                                                  f"partition-id={node} num-partitions={args.nodes}"],
                                env=node_env)  # fmt: skip
        wait_for(link, "Activated node_id=", args.nodes)
        os.environ["FLWR_HOME"] = str(work / "cli")
        overrides = [f"{k}={v}" for k, v in config.items()] + [f"output-dir={work / 'runs'}"]
        log = io.StringIO()
        start = time.perf_counter()
        run_dir = launch.run(REPO, 0, overrides, stream=Tee(log, f"[{kind}] "), superlink=address,
                             output_dir=work / "results")
        wall = time.perf_counter() - start
    finally:
        processes.stop()
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    clients = [int(r["clients"]) for r in rows]
    per_node = lambda column, n: [int(r[column]) / c for r, c in zip(rows, n, strict=True)]  # noqa: E731
    seconds = [float(r["seconds"]) for r in rows]
    down = per_node("bytes_down", [args.nodes] * len(rows))
    up = per_node("bytes_up", clients)
    return {
        "kind": kind, "run_dir": str(run_dir), "load_before": load_before, "load_after": load(),
        "accuracy": [float(r["accuracy"]) for r in rows], "clients": clients,
        "failures": [int(r["failures"]) for r in rows], "seconds": seconds, "wall_seconds": wall,
        "bytes_up_per_node": up, "bytes_down_per_node": down,
        "validation": next((line for line in log.getvalue().splitlines() if "federated validation" in line), ""),
    }  # fmt: skip


class Tee(io.TextIOBase):
    """Keeps the launcher's stream and prints it with a prefix."""

    def __init__(self, buffer: io.StringIO, prefix: str):
        self.buffer, self.prefix = buffer, prefix

    def write(self, text: str) -> int:
        self.buffer.write(text)
        if text.strip():
            print(self.prefix + text.rstrip("\n"), flush=True)
        return len(text)


# --- memory -------------------------------------------------------------------------------------------------------


VARIANTS = {
    "fedmef-int32": dict(layout="sparse", scaled=True, encoding="int32", extrusion=True),
    "masked-dense": dict(layout="masked"),  # as FedDST trains: no marked tensors, no penalty, plain convs
}


def instruction(model: str, variant: str, args, work: Path) -> tuple[Path, Path]:
    """One round's instruction for ``--replay`` (plan.json, manifest.json, state/, artifacts/) and a
    partition directory of exactly one batch of random samples."""
    import torch

    from export.exporter import export_cached
    from export.layout import GraphKey, erk_nnz
    from fedmef import wire
    from fedmef.models import prunable_layers, set_masks

    flags = VARIANTS[variant] | ({"keep": args.keep} if variant.startswith("fedmef") else {})
    base = GraphKey(model, MODELS[model], 10, args.batch, (), **flags)
    key = replace(base, layer_nnz=erk_nnz(base.build(), args.density))
    manifest, exported = export_cached(key, WORK / "export-cache", "onnxruntime")
    net = key.build()
    generator = torch.Generator().manual_seed(0)
    masks = {}
    for name, nnz in key.layer_nnz:
        weight = prunable_layers(net)[name].weight
        flat = torch.zeros(weight.numel())
        flat[torch.randperm(weight.numel(), generator=generator)[:nnz]] = 1
        masks[name] = flat.reshape(weight.shape)
    set_masks(net, masks)
    directory = work / f"{model}-{variant}"
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "artifacts").mkdir(parents=True)
    for key_name, array in wire.encode_state(net).items():
        path = directory / "state" / f"{key_name}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
    scalars = {spec.name: 0.01 for spec in manifest.inputs("step") if spec.role == "plan"}
    scalars |= {"extrude": 1.0} if "extrude" in scalars else {}
    plan = scalars | {"round": 1, "epochs": 1, "batch-size": args.batch, "seed": 0, "lr": 0.05}
    (directory / "plan.json").write_text(json.dumps(plan, indent=1))
    (directory / "manifest.json").write_text(manifest.to_json())
    for entry in manifest.files:
        shutil.copy(exported / entry.name, directory / "artifacts" / entry.name)
    data = work / f"{model}-data"
    if not data.is_dir():
        from fedmef.data import ClientData, Split
        from fedmef.partitions import save

        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.batch, *MODELS[model])).astype(np.float32)
        empty = np.zeros((0, *MODELS[model]), np.float32)
        save(ClientData(Split(x, rng.integers(0, 10, args.batch)), Split(empty, np.zeros(0, np.int64))), data,
             {"dataset": "random", "train": args.batch, "val": 0})  # fmt: skip
    return directory, data


def python_child(directory: str, data: str, out: str, repeat: str) -> None:
    """Runs in a fresh process: the Python client's round on the instruction, measured like Replay.java."""
    import onnxruntime

    from fedmef.manifest import Manifest, verify_file
    from fedmef.partitions import load as load_partition
    from python_client.artifacts import ArtifactStore
    from python_client.rounds import GraphBackend
    from python_client.runtimes import ort_options

    directory, out = Path(directory), Path(out)
    manifest = Manifest.from_json((directory / "manifest.json").read_text())
    plan = json.loads((directory / "plan.json").read_text())
    state = {str(p.relative_to(directory / "state"))[:-4]: np.load(p) for p in (directory / "state").rglob("*.npy")}
    files = {p.name: np.fromfile(p, dtype=np.uint8) for p in (directory / "artifacts").iterdir()}
    split = load_partition(data).train
    store, opened, rounds = ArtifactStore(out / "store"), {}, []

    def session(graph: str):  # python_client.runtimes._ort with one thread and the arena off
        if graph not in opened:
            path = store.root / manifest.file(graph).sha256
            ort = onnxruntime.InferenceSession(str(path), ort_options(threads=1, arena=False),
                                               providers=["CPUExecutionProvider"],
                                               disabled_optimizers=["ConstantFolding"])  # fmt: skip
            names = [i.name for i in ort.get_inputs()]
            opened[graph] = lambda feeds: ort.run(None, {name: feeds[name] for name in names})
        return opened[graph]

    for _ in range(int(repeat)):
        Path("/proc/self/clear_refs").write_text("5")
        rss = _vm("VmRSS")
        start = time.perf_counter()
        store.receive(manifest, files)  # as client_app.local_round: store, verify, open (once), train
        for entry in manifest.files:
            verify_file(entry, store.root / entry.sha256)
        backend = GraphBackend(manifest, {graph: session(graph) for graph in manifest.graphs})
        backend.train(state, plan, split.x, split.y)
        rounds.append({"seconds": time.perf_counter() - start, "rss_before": rss, "peak_growth": _vm("VmHWM") - rss})
    (out / "replay.json").write_text(json.dumps({"repetitions": rounds}))


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return -1


def measure(client: str, directory: Path, data: Path, repeat: int) -> dict:
    out = directory.with_name(f"{directory.name}-{client}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    env = os.environ | MALLOC_ENV
    if client == "java":
        command = ["java", *JVM_HEAP, "-jar", str(JAR), "--replay", str(directory), "--out", str(out), "--data",
                   str(data), "--threads", "1", "--ort-arena", "off", "--repeat", str(repeat)]  # fmt: skip
    else:
        command = [sys.executable, "-m", "benchmarks.java_node", "python-child", str(directory), str(data), str(out),
                   str(repeat)]  # fmt: skip
    subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True, text=True)
    rounds = json.loads((out / "replay.json").read_text())["repetitions"]
    warm = rounds[1:]
    return {"rss_before": rounds[0]["rss_before"], "cold_growth": rounds[0]["peak_growth"],
            "retained": rounds[1]["rss_before"] - rounds[0]["rss_before"],
            "warm_growth": statistics.median(r["peak_growth"] for r in warm),
            "warm_seconds": statistics.median(r["seconds"] for r in warm), "rounds": rounds}  # fmt: skip


def memory(args) -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models:
        for variant in VARIANTS:
            directory, data = instruction(model, variant, args, WORK)
            for client in ("java", "python"):
                row = {"model": model, "variant": variant, "client": client, "load_before": load()}
                row |= measure(client, directory, data, args.repeat)
                print(json.dumps({k: v for k, v in row.items() if k != "rounds"}), flush=True)
                rows.append(row)
    return rows


# --- report -------------------------------------------------------------------------------------------------------


def federation_table(result: dict) -> list[str]:
    lines = ["| client | final acc (%) | best acc (%) | s / round (median) | s / round (mean) | wall min | "
             "up KiB / node / round | down KiB / node / round (round 1; later) | failures | federated validation | "
             "load avg before → after |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in result["runs"]:
        down = run["bytes_down_per_node"]
        validation = run["validation"].split("accuracy", 1)[-1].strip() if run["validation"] else "–"
        lines.append(
            f"| {run['kind']} | {100 * run['accuracy'][-1]:.2f} | {100 * max(run['accuracy']):.2f} "
            f"| {statistics.median(run['seconds']):.2f} | {statistics.mean(run['seconds']):.2f} "
            f"| {run['wall_seconds'] / 60:.1f} | {statistics.mean(run['bytes_up_per_node']) / 1024:.1f} "
            f"| {down[0] / 1024:.1f}; {statistics.mean(down[1:]) / 1024:.1f} | {sum(run['failures'])} | {validation} "
            f"| {run['load_before']} → {run['load_after']} |"
        )
    return lines


def memory_table(result: dict) -> list[str]:
    rows = result["rows"]
    lines = ["| model | variant | client | warm round peak growth MB | ratio to masked-dense (same client) | "
             "cold round peak growth MB | kept after round 1 MB | warm round s |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        ref = next(r for r in rows if r["model"] == row["model"] and r["client"] == row["client"]
                   and r["variant"] == "masked-dense")  # fmt: skip
        lines.append(
            f"| {row['model']} | {row['variant']} | {row['client']} | **{row['warm_growth'] / MB:.1f}** "
            f"| {row['warm_growth'] / ref['warm_growth']:.2f} | {row['cold_growth'] / MB:.1f} "
            f"| {row['retained'] / MB:.1f} | {row['warm_seconds']:.2f} |"
        )
    return lines


def header(result: dict) -> list[str]:
    m = result["machine"]
    return [f"Command: `{result['command']}` (commit {m['commit']}, {result['date']})", "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['java']}; Python {m['python']}. "
            f"Load average (1, 5, 15 min) before: {result['load_before']}, after: {result['load_after']}.",
            ""]  # fmt: skip


def report() -> Path:
    lines = ["# Java node (virtual phone) vs the Python client", "",
             "Written by `python -m benchmarks.java_node` (see its docstring); JSON beside this file.", ""]  # fmt: skip
    path = RESULTS / "java_node-federation.json"
    if path.is_file():
        result = json.loads(path.read_text())
        a = result["args"]
        lines += ["## Federation: accuracy, time per round, bytes on the wire", "", *header(result),
                  f"Digits, FedMef, backend ort, {a['rounds']} rounds, {a['nodes']} nodes (all sampled every round), "
                  f"local epochs {a['local_epochs']}, seed {a['seed']}, Dirichlet 0.5, density 0.1; one deployed "
                  "SuperLink on loopback per federation, the server started by `server.launch.run`.", "",
                  *federation_table(result), ""]  # fmt: skip
        lines += result.get("notes", [])
    path = RESULTS / "java_node-memory.json"
    if path.is_file():
        result = json.loads(path.read_text())
        a = result["args"]
        lines += ["", "## Peak memory of one training round (one step) in ONNX Runtime: JVM vs Python", "",
                  *header(result),
                  f"Batch {a['batch']}, density {a['density']}, SAP keep {a['keep']}; one thread, ORT arena off, "
                  f"`{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}`, JVM `{' '.join(JVM_HEAP)}`; "
                  f"{a['repeat']} rounds per process, warm = median of rounds 2..n.", "", *memory_table(result),
                  ""]  # fmt: skip
        lines += result.get("notes", [])
    out = RESULTS / "java_node.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


def save(name: str, args, payload: dict, load_before: str) -> None:
    existing = RESULTS / f"java_node-{name}.json"
    notes = json.loads(existing.read_text()).get("notes", []) if existing.is_file() else []
    result = {"command": "python -m benchmarks.java_node " + " ".join(sys.argv[1:]), "args": vars(args),
              "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": load_before,
              "load_after": load(), "notes": notes} | payload  # fmt: skip
    existing.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {existing} and {report()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fed = commands.add_parser("federation", help="Java nodes vs Python SuperNodes: accuracy, s/round, bytes")
    fed.add_argument("--rounds", type=int, default=20)
    fed.add_argument("--nodes", type=int, default=5)
    fed.add_argument("--local-epochs", type=int, default=1)
    fed.add_argument("--seed", type=int, default=0)
    fed.add_argument("--clients", nargs="+", default=["java", "python"], choices=["java", "python"])
    mem = commands.add_parser("memory", help="peak RSS growth of one training round, JVM vs Python")
    mem.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    mem.add_argument("--batch", type=int, default=64)
    mem.add_argument("--density", type=float, default=0.1)
    mem.add_argument("--keep", type=float, default=0.3)
    mem.add_argument("--repeat", type=int, default=4)
    commands.add_parser("report", help="rebuild java_node.md from the JSON results")
    child = commands.add_parser("python-child")
    child.add_argument("values", nargs=4)
    args = parser.parse_args(argv)
    if args.command == "python-child":
        return python_child(*args.values)
    if args.command == "report":
        print(report())
        return None
    if not JAR.is_file():
        raise SystemExit(f"{JAR} is missing: run `make java` first")
    before = load()
    if args.command == "federation":
        runs = [federation(kind, args, WORK / f"federation-{kind}") for kind in args.clients]
        return save("federation", args, {"runs": runs}, before)
    return save("memory", args, {"rows": memory(args)}, before)


if __name__ == "__main__":
    main()
