"""Peak training memory of one exported step: dense vs masked-dense vs FedMef (FedMef §4.3).

For each model and variant the whole step graph (``export.graph.trace``) is measured in fresh
processes:

* ONNX Runtime, heap level: arena and memory patterns off, every ``malloc``/``free`` counted by an
  LD_PRELOAD shim (``malloc_shim.c``, compiled here with gcc): peak live heap during the second
  ``run`` above the live heap before it, plus the bytes of the inputs (state and batch);
* ONNX Runtime, process RSS with the default glibc allocator (no shim, no tuning): growth of
  ``VmHWM`` over the first step and over three steps, above ``VmRSS`` before the first, with the
  session as above (arena off) and with the Python client's settings (ORT's CPU arena and memory
  patterns on);
* ExecuTorch: the planned arena (``non_const_buffer_sizes``: inputs, outputs, intermediates) of the
  im2col program the server ships to ExecuTorch clients, plus the heap its kernels allocate outside
  the plan (less the Python binding's copies of the outputs, which the arena holds already),
  measured (shim) where a step is affordable (``--et-run``); the ratio is of their sum. The
  direct-convolution program's arena is listed too (what a runtime with fast convolution kernels
  would plan; portable direct convolutions take ~20 min per ResNet18 step here).

Beside each, ``fedmef.memory.estimate`` (parameters + gradients + saved activations, analytic).
Variants: ``dense``; ``masked-dense`` as FedDST trains (no BaE marked tensors, no penalty, the
weight used as is since it is zero off the mask, the mask as bool and applied with ``where``:
the cheapest that works; the baseline of every ratio); ``masked-dense-f32`` (the same graph fed
the contract's float32 mask); ``fedmef-int32`` / ``fedmef-bits`` (packed sparse parameters,
NSConv, BaE, SAP with fused ReLU; integer positions or a 1-bit mask). Same graph optimisations
for all.

    python benchmarks/memory.py [--models cnn resnet18 mobilenetv2] [--batch 64] [--keep 0.3]

``--et-only`` prints (JSON lines) just the ExecuTorch columns per row (both programs' planned arenas
and the shipped program's heap outside the plan), writing no table: what a change of the ExecuTorch
lowering moves.
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

HERE = Path(__file__).resolve().parent
MODELS = {"cnn": ((1, 8, 8), None), "resnet18": ((3, 32, 32), None), "mobilenetv2": ((3, 32, 32), None)}
MB = 2**20
BASELINE = "masked-dense"


def variants(keep: float) -> dict[str, dict]:
    fedmef = dict(layout="sparse", scaled=True, keep=keep, extrusion=True)
    return {
        "dense": dict(layout="dense"),
        "masked-dense": dict(layout="masked"),
        "masked-dense-f32": dict(layout="masked"),
        "fedmef-int32": dict(fedmef, encoding="int32"),
        "fedmef-bits": dict(fedmef, encoding="bits"),
    }


def bool_masks(gm: torch.fx.GraphModule, names: list[str], example: list[torch.Tensor]) -> list[torch.Tensor]:
    """FedDST's cheapest mask: the graph takes bool masks and casts each where it multiplies (one
    layer's float copy at a time; ``where`` costs three in ONNX Runtime). Benchmark only: the
    contract feeds float32 masks. Returns the example with bool masks."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for i, name in enumerate(names):
        if name.endswith(".mask"):
            mask = placeholders[i]
            with gm.graph.inserting_after(mask):
                cast = gm.graph.call_function(torch.ops.aten._to_copy.default, (mask,), {"dtype": torch.float32})
            mask.replace_all_uses_with(cast, delete_user_cb=lambda user, cast=cast: user is not cast)
    gm.recompile()
    return [t.bool() if name.endswith(".mask") else t for name, t in zip(names, example, strict=True)]


def build_shim(directory: Path) -> Path:
    library = directory / "malloc_shim.so"
    source = HERE / "malloc_shim.c"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def _runner(kind: str, path: str, stored) -> callable:
    if kind == "executorch":
        from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

        data = Path(path).read_bytes()
        module = _load_for_executorch_from_buffer(data)
        tensors = tuple(torch.from_numpy(stored[name]) for name in stored.files)
        return lambda: (data, module.forward(tensors))[1]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    options.enable_cpu_mem_arena = options.enable_mem_pattern = kind == "ort-client"
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"],
                                           disabled_optimizers=["ConstantFolding"])  # fmt: skip
    feed = {i.name: stored[i.name] for i in session.get_inputs()}
    return lambda: session.run(None, feed)


def measure_child(kind: str, path: str, inputs_path: str) -> None:
    """In a fresh process: ``ort-heap`` / ``et-heap`` (shim preloaded): the second run's peak heap;
    ``ort``/``ort-client``: VmHWM growth over the first step and over three. Prints JSON."""
    stored = np.load(inputs_path)
    run = _runner("executorch" if kind == "et-heap" else kind.removesuffix("-heap"), path, stored)
    if kind.endswith("-heap"):
        shim = ctypes.CDLL(None)
        for name in ("shim_live", "shim_peak"):
            getattr(shim, name).restype = ctypes.c_long
        run()  # first call: ExecuTorch allocates its planned arena, ONNX Runtime its kernels
        before = shim.shim_live()
        shim.shim_reset_peak()
        outputs = run()
        peak = shim.shim_peak() - before
        # ExecuTorch's Python binding returns copies of the outputs, which the planned arena holds already
        copies = sum(t.numel() * t.element_size() for t in outputs) if kind == "et-heap" else 0
        del outputs
        print(json.dumps({"peak": peak - copies, "inputs": sum(stored[name].nbytes for name in stored.files)}))
        return
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    rss = _vm("VmRSS")
    growth = []
    for _ in range(3):
        run()
        growth.append(_vm("VmHWM") - rss)
    print(json.dumps({"first": growth[0], "steady": growth[-1]}))


def measure(kind: str, path: Path, inputs: dict[str, np.ndarray], shim: Path, work: Path) -> dict:
    stored = work / "inputs.npz"
    np.savez(stored, **inputs)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kind.endswith("-heap"):
        env["LD_PRELOAD"] = str(shim)
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(stored)], env=env,
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
    layout = {"dense": "dense", "fedmef-int32": "fedmef", "fedmef-bits": "fedmef"}.get(variant, "masked-dense")
    return estimate(model, x, y, layout, positions="bits" if variant.endswith("bits") else "int32").total


def traced(key: GraphKey, variant: str) -> tuple[torch.fx.GraphModule, list[str], list[torch.Tensor]]:
    layout = layout_of(key)
    names = list(layout.graph_inputs["step"])
    example = example_inputs(layout.inputs("step"), key.num_classes)
    gm, _ = trace(key, example)
    if variant == BASELINE:
        example = bool_masks(gm, names, example)
    return gm, names, example


def row_key(model: str, flags: dict, args) -> GraphKey:
    shape, width = MODELS[model]
    base = GraphKey(model, shape, 10, args.batch, (), width=width, **flags)
    return replace(base, layer_nnz=erk_nnz(base.build(), args.density))


def et_columns(model: str, key: GraphKey, variant: str, args, shim: Path, work: Path) -> dict:
    """The ExecuTorch columns of a row: the direct program's planned arena, the im2col program's (what
    the server ships) and, for ``--et-run`` models, the heap the im2col program's kernels allocate."""
    row = {}
    gm, _, example = traced(key, variant)
    row["et_arena"] = executorch_backend.planned_arena_bytes(executorch_backend.lower(gm, example))
    gm, names, example = traced(replace(key, conv="im2col"), variant)
    program = executorch_backend.lower(gm, example)
    row["et_im2col_arena"] = executorch_backend.planned_arena_bytes(program)
    if model in args.et_run:
        pte = work / f"{model}-{variant}.pte"
        pte.write_bytes(program.buffer)
        inputs = {name: tensor.numpy() for name, tensor in zip(names, example, strict=True)}
        row["et_heap"] = measure("et-heap", pte, inputs, shim, work)["peak"]
    return row


def run_row(model: str, variant: str, flags: dict, args, shim: Path, work: Path) -> dict:
    key = row_key(model, flags, args)
    row = {"model": model, "variant": variant, "analytic": analytic(key, variant, args.density)}
    start = time.perf_counter()
    gm, names, example = traced(key, variant)
    inputs = {name: tensor.numpy() for name, tensor in zip(names, example, strict=True)}
    onnx_path = work / f"{model}-{variant}.onnx"
    onnx_backend.write(gm, example, names, [o.name for o in layout_of(key).outputs["step"]], onnx_path)
    heap = measure("ort-heap", onnx_path, inputs, shim, work)
    row.update(ort=heap["peak"] + heap["inputs"], inputs=heap["inputs"])
    for kind in ("ort", "ort-client"):
        rss = measure(kind, onnx_path, inputs, shim, work)
        row.update({f"{kind}_rss_first": rss["first"], f"{kind}_rss": rss["steady"]})
    if model in args.et:  # traced again: the ONNX writer rewrites the graph it is given
        row.update(et_columns(model, key, variant, args, shim, work))
    row["build_seconds"] = time.perf_counter() - start
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def table(rows: list[dict]) -> str:
    def mb(value):
        return "–" if value is None else f"{value / MB:.1f}"

    def ratio(row, ref, *fields):
        if not all(row.get(f) is not None and ref.get(f) is not None for f in fields):
            return "–"
        return f"{sum(row[f] for f in fields) / sum(ref[f] for f in fields):.2f}"

    header = ["model", "variant", "analytic MB", "ORT heap peak MB", "ratio", "ORT RSS growth, glibc (1st step)",
              "ratio", "ORT RSS growth, arena + patterns", "ratio", "ET arena (shipped im2col program)",
              "ET heap outside plan", "ratio (arena + heap)", "ET arena, direct convs"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ref = next((r for r in rows if r["model"] == row["model"] and r["variant"] == BASELINE), {})
        et = ratio(row, ref, "et_im2col_arena", "et_heap") if "et_heap" in ref else ratio(row, ref, "et_im2col_arena")
        lines.append(
            f"| {row['model']} | {row['variant']} | {mb(row['analytic'])} | {mb(row['ort'])} "
            f"| {ratio(row, ref, 'ort')} "
            f"| {mb(row['ort_rss'])} ({mb(row['ort_rss_first'])}) | {ratio(row, ref, 'ort_rss')} "
            f"| {mb(row['ort-client_rss'])} | {ratio(row, ref, 'ort-client_rss')} "
            f"| {mb(row.get('et_im2col_arena'))} | {mb(row.get('et_heap'))} | {et} | {mb(row.get('et_arena'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="+", default=None, help="subset of the variants (default all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--keep", type=float, default=0.3, help="SAP keep fraction (1 - gamma)")
    parser.add_argument("--et", nargs="*", default=["cnn", "resnet18"], help="models to lower to ExecuTorch")
    parser.add_argument("--et-run", nargs="*", default=["cnn", "resnet18"], help="models whose ExecuTorch step is run")
    parser.add_argument("--et-only", action="store_true", help="only the ExecuTorch columns, printed as JSON rows")
    parser.add_argument("--out", default=str(HERE / "results" / "memory.md"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure_child(*args.child)
    torch.set_num_threads(1)
    chosen = {v: f for v, f in variants(args.keep).items() if not args.variants or v in args.variants}
    if args.et_only:
        with tempfile.TemporaryDirectory() as tmp:
            shim = build_shim(Path(tmp))
            for model in args.models:
                for variant, flags in chosen.items():
                    start = time.perf_counter()
                    row = et_columns(model, row_key(model, flags, args), variant, args, shim, Path(tmp))
                    row = {name: round(value / MB, 2) for name, value in row.items()}
                    print(json.dumps({"model": model, "variant": variant, **row,
                                      "seconds": round(time.perf_counter() - start)}), flush=True)  # fmt: skip
        return
    import onnxruntime

    header = (f"# Peak training memory per step\n\nCommand: `python benchmarks/{Path(__file__).name} "
              f"{' '.join(sys.argv[1:])}`\n\nbatch {args.batch}, density {args.density}, SAP keep {args.keep}; "
              f"onnxruntime {onnxruntime.__version__}; MB = 2^20 bytes; ratio = variant / {BASELINE}.\n\n")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shim = build_shim(work)
        for model in args.models:
            for variant, flags in chosen.items():
                rows.append(run_row(model, variant, flags, args, shim, work))
                # after every row: an interrupted run keeps its rows (ResNet18 ExecuTorch rows take minutes)
                Path(args.out).write_text(header + table(rows) + "\n")
    print(header + table(rows))


if __name__ == "__main__":
    main()
