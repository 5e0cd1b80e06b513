"""Peak training memory of one exported step: dense vs masked-dense vs FedMef (FedMef §4.3).

For each model and variant the whole step graph (``export.graph.trace``) is measured in

* ExecuTorch: the planned arena (``non_const_buffer_sizes``: inputs, outputs, intermediates) plus,
  where a step is affordable (``--et-run``), the heap the kernels allocate outside the plan;
* ONNX Runtime: a fresh subprocess with arena and memory patterns off, heap counted at malloc
  level by an LD_PRELOAD shim (``malloc_shim.c``, compiled here with gcc): peak live heap during
  the second ``run`` above the live heap before it, plus the bytes of the inputs (state and
  batch); the growth of ``VmHWM`` over the first (cold) call is printed as a cross-check.

Beside each, ``fedmef.memory.estimate`` (parameters + gradients + saved activations, analytic).
Variants: ``dense`` (no masks), ``masked-dense`` (dense tensors x mask, plain convs: the best
non-FedMef baseline — no NSConv, no mask copies), ``fedmef-int32`` / ``fedmef-bits`` (packed
sparse parameters, NSConv, SAP with fused ReLU; int32 positions or a 1-bit mask).

    python benchmarks/memory.py [--models cnn resnet18 mobilenetv2] [--batch 64] [--keep 0.3]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from export import executorch_backend, onnx_backend
from export.graph import trace
from export.layout import GraphKey, erk_nnz, example_inputs, layout_of
from fedmef.memory import estimate
from fedmef.models import prunable_layers, set_masks
from fedmef.sparsity import random_masks
from python_client.runtimes import ort_options

HERE = Path(__file__).resolve().parent
MODELS = {"cnn": ((1, 8, 8), None), "resnet18": ((3, 32, 32), None), "mobilenetv2": ((3, 32, 32), None)}
MB = 2**20


def variants(keep: float) -> dict[str, dict]:
    return {
        "dense": dict(layout="dense"),
        # masked-dense as FedDST trains: no BaE marked tensors, no penalty (the key does not extrude)
        "masked-dense": dict(layout="masked"),
        "fedmef-int32": dict(layout="sparse", scaled=True, keep=keep, encoding="int32", extrusion=True),
        "fedmef-bits": dict(layout="sparse", scaled=True, keep=keep, encoding="bits", extrusion=True),
    }


def build_shim(directory: Path) -> Path:
    library = directory / "malloc_shim.so"
    source = HERE / "malloc_shim.c"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def _shim():
    lib = ctypes.CDLL(None)
    for name in ("shim_live", "shim_peak"):
        getattr(lib, name).restype = ctypes.c_long
    return lib


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def measure_child(runtime: str, path: str, inputs_path: str) -> None:
    """Runs in the fresh subprocess (shim preloaded): prints {run_peak, inputs, vmhwm} as JSON."""
    stored = np.load(inputs_path)
    inputs = [stored[name] for name in stored.files]
    shim = _shim()
    if runtime == "onnxruntime":
        import onnxruntime

        session = onnxruntime.InferenceSession(
            path, ort_options(threads=1, arena=False), providers=["CPUExecutionProvider"],
            disabled_optimizers=["ConstantFolding"],
        )  # fmt: skip
        feed = {i.name: stored[i.name] for i in session.get_inputs()}
        run = lambda: session.run(None, feed)  # noqa: E731
    else:
        data = Path(path).read_bytes()
        from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

        module = _load_for_executorch_from_buffer(data)
        tensors = tuple(torch.from_numpy(a) for a in inputs)
        run = lambda: module.forward(tensors)  # noqa: E731
    Path("/proc/self/clear_refs").write_text("5")  # cross-check on the first (cold) call: peak RSS growth
    rss = _vm("VmRSS")
    run()  # ExecuTorch allocates its planned arena, ORT its kernels, on the first call
    vmhwm = _vm("VmHWM") - rss
    before = shim.shim_live()
    shim.shim_reset_peak()
    start = time.perf_counter()
    outputs = run()
    seconds = time.perf_counter() - start
    peak = shim.shim_peak() - before
    del outputs
    print(json.dumps({"run_peak": peak, "inputs": sum(a.nbytes for a in inputs), "vmhwm": vmhwm, "seconds": seconds}))


def measure(runtime: str, path: Path, inputs: dict[str, torch.Tensor], shim: Path, work: Path) -> dict:
    folder = work / "inputs.npz"
    np.savez(folder, **{name: tensor.numpy() for name, tensor in inputs.items()})
    env = {**os.environ, "LD_PRELOAD": str(shim), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", runtime, str(path), str(folder)], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def analytic(key: GraphKey, variant: str, density: float) -> int:
    model = key.build()
    layers = prunable_layers(model)
    if variant != "dense":
        set_masks(model, random_masks({n: tuple(layer.weight.shape) for n, layer in layers.items()}, density,
                                      torch.Generator().manual_seed(0)))  # fmt: skip
    x = torch.randn(key.batch_size, *key.input_shape)
    y = torch.randint(0, key.num_classes, (key.batch_size,))
    layout = {"dense": "dense", "masked-dense": "masked-dense"}.get(variant, "fedmef")
    return estimate(model, x, y, layout, positions="bits" if variant.endswith("bits") else "int32").total


def run_row(model: str, variant: str, flags: dict, args, shim: Path, work: Path) -> dict:
    shape, width = MODELS[model]
    base = GraphKey(model, shape, 10, args.batch, (), width=width, **flags)
    key = replace(base, layer_nnz=erk_nnz(base.build(), args.density))
    layout = layout_of(key)
    example = example_inputs(layout.inputs("step"), key.num_classes)
    row = {"model": model, "variant": variant, "analytic": analytic(key, variant, args.density)}
    start = time.perf_counter()
    gm, _ = trace(key, example)
    onnx_path = work / f"{model}-{variant}.onnx"
    onnx_backend.write(gm, example, list(layout.graph_inputs["step"]), [o.name for o in layout.outputs["step"]],
                       onnx_path)  # fmt: skip
    named = {spec.name: tensor for spec, tensor in zip(layout.inputs("step"), example, strict=True)}
    ort = measure("onnxruntime", onnx_path, named, shim, work)
    row.update(ort=ort["run_peak"] + ort["inputs"], ort_vmhwm=ort["vmhwm"], ort_seconds=ort["seconds"])
    if model in args.et:
        gm, _ = trace(key, example)
        program = executorch_backend.lower(gm, example)
        row["et_arena"] = executorch_backend.planned_arena_bytes(program)
        if model in args.et_run:
            pte = work / f"{model}-{variant}.pte"
            pte.write_bytes(program.buffer)
            row["et_heap"] = measure("executorch", pte, named, shim, work)["run_peak"]
    row["build_seconds"] = time.perf_counter() - start
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def table(rows: list[dict]) -> str:
    def mb(value):
        return "–" if value is None else f"{value / MB:.1f}"

    header = ["model", "variant", "analytic MB", "ORT heap peak MB (VmHWM Δ)", "ORT ratio", "ET arena MB",
              "ET heap outside plan MB", "ET ratio"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ref = next(r for r in rows if r["model"] == row["model"] and r["variant"] == "masked-dense")
        et_ratio = f"{row['et_arena'] / ref['et_arena']:.2f}" if "et_arena" in row and "et_arena" in ref else "–"
        lines.append(
            f"| {row['model']} | {row['variant']} | {mb(row['analytic'])} | {mb(row['ort'])} ({mb(row['ort_vmhwm'])}) "
            f"| {row['ort'] / ref['ort']:.2f} | {mb(row.get('et_arena'))} | {mb(row.get('et_heap'))} | {et_ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--keep", type=float, default=0.3, help="SAP keep fraction (1 - gamma)")
    parser.add_argument("--et", nargs="*", default=list(MODELS), help="models to lower to ExecuTorch")
    parser.add_argument("--et-run", nargs="*", default=["cnn"], help="models whose ExecuTorch step is run")
    parser.add_argument("--out", default=str(HERE / "results" / "memory.md"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure_child(*args.child)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shim = build_shim(work)
        rows = [run_row(m, v, f, args, shim, work) for m in args.models for v, f in variants(args.keep).items()]
    text = (f"# Peak training memory per step\n\nCommand: `python benchmarks/{Path(__file__).name} "
            f"{' '.join(sys.argv[1:])}`\n\nbatch {args.batch}, density {args.density}, SAP keep {args.keep}; "
            f"ratio = variant / masked-dense.\n\n{table(rows)}\n")  # fmt: skip
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
