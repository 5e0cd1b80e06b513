"""Milliseconds per local training step: eager dense, eager FedMef, ORT FedMef, ExecuTorch FedMef.

Same model, batch, state and thread count (1) for every row; the median of ``--steps`` timed
steps after ``--warmup`` untimed ones. The exported rows run the whole-step graphs through the
client's runtime adapters (``python_client.runtimes``), i.e. exactly what a client executes.

    python benchmarks/step_time.py [--model cnn] [--batch 32] [--steps 20]
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


def graph_stepper(directory: Path, model, x, y, threads: int = 1):
    """A step closure running the exported step graph, carrying its state from one call to the next."""
    manifest = Manifest.load(directory)
    run = open_graph(manifest, "step", directory / manifest.file("step").name, threads)
    extra = {p.X: x, p.Y: y, p.LR: 0.01, p.STEP: 0.0, p.STEPS: 1.0, p.BASE_LR: 0.01, p.EXTRUDE: 0.0,
             p.LAMBDA_STEP: 0.0, p.LAMBDA_MAX: 0.0, p.WINDOW_OFFSET: 0.0, p.WINDOW_ROUNDS: 1.0}  # fmt: skip
    feeds = p.pack(manifest, "step", wire.encode_state(model), extra)
    outputs = manifest.graphs["step"].outputs

    def step():
        for spec, value in zip(outputs, run(feeds), strict=True):
            if spec.of:
                feeds[spec.of] = value

    return step


def timed(step, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn", choices=list(SHAPES))
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=20)
    # defaults mirror what the server ships (server/artifacts.py): direct convs for ONNX Runtime,
    # im2col + mm for ExecuTorch (its portable conv kernels are slow)
    parser.add_argument("--ort-conv", choices=["direct", "im2col"], default="direct", help="conv form, ORT export")
    parser.add_argument("--et-conv", choices=["direct", "im2col"], default="im2col", help="conv form, ET export")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "step_time.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = SHAPES[args.model]
    width = int(args.width) if args.width is not None and args.model != "mobilenetv2" else args.width
    base = GraphKey(args.model, shape, 10, args.batch, (), width=width, scaled=True, keep=args.keep, extrusion=True)
    key = replace(base, layer_nnz=erk_nnz(base.build(), args.density))
    conv = {"onnxruntime": args.ort_conv, "executorch": args.et_conv}
    gen = np.random.default_rng(0)
    x = gen.standard_normal((args.batch, *shape)).astype(np.float32)
    y = gen.integers(0, 10, args.batch).astype(np.int64)
    dense = replace(base, scaled=False, keep=1.0).build()
    fedmef = masked_model(key, args.density)
    rows = {"eager dense": timed(eager_step_timer(dense, x, y), args.warmup, args.steps),
            "eager FedMef": timed(eager_step_timer(fedmef, x, y), args.warmup, args.steps)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for runtime, label in [("onnxruntime", "ORT FedMef"), ("executorch", "ExecuTorch FedMef")]:
            start = time.perf_counter()
            export(replace(key, conv=conv[runtime]), Path(tmp) / runtime, runtime)
            seconds = time.perf_counter() - start
            stepper = graph_stepper(Path(tmp) / runtime, fedmef, x, y)
            rows[label] = timed(stepper, args.warmup, args.steps)
            print(f"{label}: export {seconds:.1f} s", file=sys.stderr)
    lines = ["| step | ms/step |", "|---|---|"] + [f"| {name} | {ms:.2f} |" for name, ms in rows.items()]
    text = (f"# Step time\n\nCommand: `python benchmarks/step_time.py {' '.join(sys.argv[1:])}`\n\n"
            f"{args.model} {shape}, batch {args.batch}, density {args.density}, SAP keep {args.keep}, 1 thread, "
            f"median of {args.steps} steps, convs {args.ort_conv} (ORT) / {args.et_conv} (ExecuTorch); "
            f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(other jobs inflate every row alike).\n\n"
            + "\n".join(lines) + "\n")  # fmt: skip
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
