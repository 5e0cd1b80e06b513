"""Milliseconds per local training step: eager PyTorch, ONNX Runtime and ExecuTorch, dense and FedMef.

Same model, batch, state and thread count (1) for every row. The rows are timed interleaved: each
of ``--rounds`` rounds runs ``--steps`` steps of every row in turn, so load from other processes
falls on all rows alike; a row's time is the median step, its ratio the median over rounds of
(its median / eager dense's median in that round). The 1-minute load average is sampled every
round. The exported rows run the whole-step graphs through the client's runtime adapters
(``python_client.runtimes``), i.e. exactly what a client executes; ONNX Runtime rows list the
kernels the session runs per step.

``--et-profile`` adds ExecuTorch's per-operator times (ETDump) for both exported programs.

    python benchmarks/step_time.py [--model cnn] [--batch 32] [--rounds 20] [--steps 5] [--et-profile 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from export.exporter import export
from export.layout import GraphKey, erk_nnz
from fedmef import protocol as p
from fedmef import wire
from fedmef.manifest import Manifest
from fedmef.models import prunable_layers, set_masks
from fedmef.sparsity import random_masks
from python_client.runtimes import open_graph

HERE = Path(__file__).resolve().parent
SHAPES = {"cnn": (1, 8, 8), "resnet18": (3, 32, 32), "mobilenetv2": (3, 32, 32)}


def masked_model(key: GraphKey, density: float):
    model = key.build()
    layers = prunable_layers(model)
    set_masks(model, random_masks({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density,
                                  torch.Generator().manual_seed(0)))  # fmt: skip
    return model


def eager_step_timer(model, x, y):
    layers = prunable_layers(model)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param.sub_(0.01 * param.grad)
            for layer in layers.values():
                layer.weight.mul_(layer.mask)

    return step


def step_feeds(manifest: Manifest, model, x, y) -> dict[str, np.ndarray]:
    extra = {p.X: x, p.Y: y, p.LR: 0.01, p.STEP: 0.0, p.STEPS: 1.0, p.BASE_LR: 0.01, p.EXTRUDE: 0.0,
             p.LAMBDA_RAMP: 1.0, p.LAMBDA_MAX: 0.0, p.WINDOW_OFFSET: 0.0, p.WINDOW_ROUNDS: 1.0}  # fmt: skip
    return p.pack(manifest, "step", wire.encode_state(model), extra)


def graph_stepper(directory: Path, model, x, y, threads: int = 1):
    """A step closure running the exported step graph, carrying its state from one call to the next."""
    manifest = Manifest.load(directory)
    run = open_graph(manifest, "step", directory / manifest.file("step").name, threads)
    feeds = step_feeds(manifest, model, x, y)
    outputs = manifest.graphs["step"].outputs

    def step():
        for spec, value in zip(outputs, run(feeds), strict=True):
            if spec.of:
                feeds[spec.of] = value

    return step


def ort_kernels(path: Path) -> int:
    """Nodes of the graph ONNX Runtime runs (after its own optimizations), as the client opens it."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(path.with_suffix(".optimized.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=["ConstantFolding"])  # fmt: skip
    return len(onnx.load(options.optimized_model_filepath).graph.node)


def et_operator_times(directory: Path, model, x, y, steps: int) -> dict[str, tuple[float, int]]:
    """Per ExecuTorch operator of the step program: (ms per step, calls per step), from an ETDump of
    ``steps`` steps (each call's median over the steps, summed over the calls)."""
    from executorch.devtools import Inspector
    from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

    manifest = Manifest.load(directory)
    data = (directory / manifest.file("step").name).read_bytes()
    module = _load_for_executorch_from_buffer(data, enable_etdump=True, debug_buffer_size=0)
    feeds = step_feeds(manifest, model, x, y)
    inputs = tuple(torch.from_numpy(np.require(feeds[s.name], requirements="C")) for s in manifest.inputs("step"))
    for _ in range(steps):
        module.forward(inputs)
    dump = directory / "step.etdp"
    module.write_etdump_result_to_file(str(dump))
    totals: dict[str, tuple[float, int]] = {}
    for block in Inspector(etdump_path=str(dump)).event_blocks:
        for event in block.events:
            if event.name.startswith("native_call_") and event.perf_data is not None:
                name = event.name.removeprefix("native_call_").split(".")[0]
                ms, calls = totals.get(name, (0.0, 0))
                totals[name] = (ms + statistics.median(event.perf_data.raw), calls + 1)
    return totals


def profile_table(dense: dict, fedmef: dict, rows: int = 10) -> str:
    names = sorted(set(dense) | set(fedmef), key=lambda n: -max(dense.get(n, (0,))[0], fedmef.get(n, (0,))[0]))

    def cell(times: dict, chosen) -> str:
        ms, calls = (sum(times[n][i] for n in chosen if n in times) for i in (0, 1))
        return f"{ms:.2f} ({calls})" if calls else "–"

    lines = ["| operator | ExecuTorch dense ms (calls) | ExecuTorch FedMef ms (calls) |", "|---|---|---|"]
    lines += [f"| `{n}` | {cell(dense, [n])} | {cell(fedmef, [n])} |" for n in names[:rows]]
    lines.append(f"| everything else | {cell(dense, names[rows:])} | {cell(fedmef, names[rows:])} |")
    lines.append(f"| all operators | {cell(dense, names)} | {cell(fedmef, names)} |")
    return "\n".join(lines) + "\n"


def interleaved(steps: dict[str, callable], rounds: int, per_round: int, warmup: int):
    """Per row: all step times (s); per round: each row's median; and the load averages seen."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps}
    medians = {name: [] for name in steps}
    loads = []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for name, step in steps.items():
            samples = []
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                samples.append(time.perf_counter() - start)
            times[name] += samples
            medians[name].append(statistics.median(samples))
    return times, medians, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn", choices=list(SHAPES))
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="steps of each row per round")
    parser.add_argument("--warmup", type=int, default=5)
    # what the server ships (server/artifacts.py): direct convs for ONNX Runtime, im2col + mm for
    # ExecuTorch (its portable conv kernels are slow)
    parser.add_argument("--et-conv", choices=["direct", "im2col"], default="im2col", help="conv form, ET export")
    parser.add_argument("--et-profile", type=int, default=10, metavar="STEPS",
                        help="ETDump per-operator profile of the ExecuTorch programs over STEPS steps (0: none)")
    parser.add_argument("--out", default=str(HERE / "results" / "step_time.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = SHAPES[args.model]
    width = int(args.width) if args.width is not None and args.model != "mobilenetv2" else args.width
    base = GraphKey(args.model, shape, 10, args.batch, (), width=width, scaled=True, keep=args.keep, extrusion=True)
    fedmef_key = replace(base, layer_nnz=erk_nnz(base.build(), args.density))
    dense_key = replace(fedmef_key, layout="dense", scaled=False, keep=1.0, extrusion=False)
    gen = np.random.default_rng(0)
    x = gen.standard_normal((args.batch, *shape)).astype(np.float32)
    y = gen.integers(0, 10, args.batch).astype(np.int64)
    dense = dense_key.build()
    fedmef = masked_model(fedmef_key, args.density)
    steps = {"eager dense": eager_step_timer(dense, x, y), "eager FedMef": eager_step_timer(fedmef, x, y)}
    kernels = {}
    with tempfile.TemporaryDirectory() as tmp:
        exports = [("ORT dense", dense_key, "onnxruntime", dense), ("ORT FedMef", fedmef_key, "onnxruntime", fedmef),
                   ("ExecuTorch dense", replace(dense_key, conv=args.et_conv), "executorch", dense),
                   ("ExecuTorch FedMef", replace(fedmef_key, conv=args.et_conv), "executorch", fedmef)]  # fmt: skip
        for label, key, runtime, model in exports:
            start = time.perf_counter()
            directory = Path(tmp) / label.replace(" ", "-")
            export(key, directory, runtime)
            print(f"{label}: export {time.perf_counter() - start:.1f} s", file=sys.stderr)
            steps[label] = graph_stepper(directory, model, x, y)
            if runtime == "onnxruntime":
                kernels[label] = ort_kernels(directory / "step.onnx")
        times, medians, loads = interleaved(steps, args.rounds, args.steps, args.warmup)
        profile = ""
        if args.et_profile:
            dense_ops, fedmef_ops = (et_operator_times(Path(tmp) / f"ExecuTorch-{name}", model, x, y, args.et_profile)
                                     for name, model in (("dense", dense), ("FedMef", fedmef)))  # fmt: skip
            profile = (f"\nWhere ExecuTorch's time goes (ETDump, {args.et_profile} steps, each call's median "
                       f"summed per operator; load {os.getloadavg()[0]:.1f}):\n\n")
            profile += profile_table(dense_ops, fedmef_ops)
    ref = medians["eager dense"]
    lines = ["| step | ms/step (median) | × eager dense | ORT kernels |", "|---|---|---|---|"]
    for name in steps:
        ratio = statistics.median(m / r for m, r in zip(medians[name], ref, strict=True))
        ms = 1000 * statistics.median(times[name])
        lines.append(f"| {name} | {ms:.2f} | {ratio:.2f} | {kernels.get(name, '–')} |")
    text = (f"# Step time\n\nCommand: `python benchmarks/step_time.py {' '.join(sys.argv[1:])}`\n\n"
            f"{args.model} {shape}, batch {args.batch}, density {args.density}, SAP keep {args.keep}, 1 thread; "
            f"{args.rounds} interleaved rounds of {args.steps} steps per row; convs direct (ORT) / {args.et_conv} "
            f"(ExecuTorch); 1-minute load average over the rounds: {min(loads):.1f}–{max(loads):.1f} "
            f"(median {statistics.median(loads):.1f}) on {os.cpu_count()} cores.\n\n"
            + "\n".join(lines) + "\n" + profile)  # fmt: skip
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
