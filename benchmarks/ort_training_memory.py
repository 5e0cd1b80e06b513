"""Peak memory of one training step on ONNX Runtime's *training* API: generate_artifacts vs ours.

The standard artifact sets are loaded the way an on-device app loads them (``CheckpointState``,
``Module``, ``Optimizer``) in fresh processes of the training venv (``.venv-ort-training``), arena and
memory patterns off, one thread; a step is ``module(*inputs)``, ``optimizer.step()``,
``module.lazy_reset_grad()``. Measured per cell:

* heap peak: every ``malloc``/``free`` counted by the LD_PRELOAD shim of ``benchmarks/memory.py``;
  peak live heap during the second step above the live heap before it;
* RSS growth: no shim, default glibc: growth of ``VmHWM`` over three steps above ``VmRSS`` before the first.

Variants (model with ERK masks at ``--density``):

* ``generate-artifacts masked-dense``: the model's forward (weight x frozen float mask, plain convs)
  exported by ``torch.onnx.export(training=TRAINING)`` and turned into artifacts by ORT's own
  ``generate_artifacts`` (cross-entropy, SGD) — what an ORT-training user would build;
* ``ours no-SAP``: ``export/ort_training.py`` with packed sparse values (+ int32 positions), NSConv,
  BaE penalty and budget-aware rate, weight decay; dense activations saved for backward;
* ``ours SAP int32`` / ``ours SAP int32 fused``: the same with SAP (keep ``--keep``; ReLU not fused / fused).

    python benchmarks/ort_training_memory.py [--models cnn resnet18] [--batch 64] [--keep 0.3]
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
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MB = 2**20
MODELS = {"cnn": (1, 8, 8), "resnet18": (3, 32, 32)}
BASELINE = "generate-artifacts masked-dense"


def variants(keep: float) -> dict[str, dict | None]:
    ours = dict(layout="sparse", scaled=True, extrusion=True, weight_decay=1e-4)
    return {
        BASELINE: None,
        "ours no-SAP": dict(ours, keep=1.0),
        "ours SAP int32": dict(ours, keep=keep, fuse_relu=False),
        "ours SAP int32 fused": dict(ours, keep=keep, fuse_relu=True),
    }


def build(model: str, variant: str, flags: dict | None, args, directory: Path) -> None:
    """Write one artifact set into ``directory`` (main venv: torch; ORT-training parts by the worker)."""
    from dataclasses import replace

    from export import ort_training
    from export.layout import GraphKey, erk_nnz

    key = GraphKey(model, MODELS[model], 10, args.batch, (), **(flags or {"layout": "sparse"}))
    key = replace(key, layer_nnz=erk_nnz(key.build(), args.density))
    if flags is not None:
        ort_training.export(key, directory)
        return
    forward = directory / "forward.onnx"
    export_masked_forward(key, forward, args.density)
    run_child("generate", str(forward), str(directory))


def export_masked_forward(key, path: Path, density: float) -> None:
    """The model with weight x mask (masks as buffers), plain convolutions, as a training-mode ONNX forward."""
    import warnings

    import torch

    from fedmef.models import prunable_layers, set_masks
    from fedmef.sparsity import random_masks

    model = key.build()
    layers = prunable_layers(model)
    shapes = {n: tuple(m.weight.shape) for n, m in layers.items()}
    set_masks(model, random_masks(shapes, density, torch.Generator().manual_seed(0)))
    x = torch.randn(key.batch_size, *key.input_shape)

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(), (x,), str(path), input_names=["x"], output_names=["logits"], dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False, opset_version=17)


def run_child(*argv: str, shim: Path | None = None) -> dict:
    from fedmef.ort_training import interpreter

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if shim is not None:
        env["LD_PRELOAD"] = str(shim)
    out = subprocess.run([str(interpreter()), "-I", __file__, "--child", *argv], env=env, capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"child {argv[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the training venv's side (numpy + onnxruntime-training only) ------------------------------


def _training_api():
    sys.path.insert(0, str(HERE.parent / "fedmef"))
    import ort_training_worker  # registers onnxruntime.training without its torch-importing __init__

    return ort_training_worker


def child_generate(forward: str, directory: str) -> None:
    import onnx

    _training_api()
    from onnxruntime.training import artifacts

    model = onnx.load(forward)
    frozen = [i.name for i in model.graph.initializer if i.name.endswith("mask")]
    trainable = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
                 and i.name not in frozen and "." in i.name]  # fmt: skip
    artifacts.generate_artifacts(model, requires_grad=trainable, frozen_params=frozen,
                                 loss=artifacts.LossType.CrossEntropyLoss, optimizer=artifacts.OptimType.SGD,
                                 artifact_directory=directory)  # fmt: skip
    print(json.dumps({"trainable": trainable, "frozen": frozen}))


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def child_measure(directory: str, kind: str) -> None:
    api = _training_api()
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level, options.intra_op_num_threads = 3, 1
    options.enable_cpu_mem_arena = options.enable_mem_pattern = False
    state = api.CheckpointState.load_checkpoint(f"{directory}/checkpoint")
    module = api.Module(f"{directory}/training_model.onnx", state, session_options=options)
    optimizer = api.Optimizer(f"{directory}/optimizer_model.onnx", module)
    shapes = json.loads(Path(directory, "inputs.json").read_text())
    rng = np.random.default_rng(0)
    feeds = []
    for name in module.input_names():
        shape, dtype = shapes[name]
        if dtype == "int64":
            feeds.append(rng.integers(0, 10, shape).astype(np.int64))
        elif shape:
            feeds.append(rng.standard_normal(shape).astype(np.float32))
        else:
            feeds.append(np.asarray(1.0 if name == "step" else 4.0 if name == "steps" else 0.05, np.float32))
    module.train()

    def step():
        module(*feeds)
        optimizer.step()
        module.lazy_reset_grad()

    if kind == "heap":
        shim = ctypes.CDLL(None)
        for name in ("shim_live", "shim_peak"):
            getattr(shim, name).restype = ctypes.c_long
        step()
        before = shim.shim_live()
        shim.shim_reset_peak()
        step()
        print(json.dumps({"peak": shim.shim_peak() - before}))
        return
    Path("/proc/self/clear_refs").write_text("5")
    rss = _vm("VmRSS")
    for _ in range(3):
        step()
    print(json.dumps({"growth": _vm("VmHWM") - rss}))


# --- the table -----------------------------------------------------------------------------------


def write_inputs(model: str, variant: str, args, directory: Path) -> None:
    """Shapes and dtypes of the user inputs (x, y and, for ours, the plan scalars) for the child."""
    c, h, w = MODELS[model]
    shapes = {"x": [[args.batch, c, h, w], "float32"], "y": [[args.batch], "int64"], "labels": [[args.batch], "int64"]}
    if variant != BASELINE:
        from fedmef.manifest import Manifest

        manifest = Manifest.load(directory)
        shapes |= {t.name: [list(t.shape), t.dtype] for t in manifest.inputs("step") if t.role != "data"}
    (directory / "inputs.json").write_text(json.dumps(shapes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["cnn"], choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--out", default=str(HERE / "results" / "ort_training_memory.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from benchmarks.memory import build_shim
    from fedmef.ort_training import worker

    versions = worker().versions
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shim = build_shim(work)
        for model in args.models:
            for variant, flags in variants(args.keep).items():
                directory = work / f"{model}-{variant.replace(' ', '-')}"
                directory.mkdir()
                start = time.perf_counter()
                build(model, variant, flags, args, directory)
                write_inputs(model, variant, args, directory)
                heap = run_child("measure", str(directory), "heap", shim=shim)["peak"]
                growth = run_child("measure", str(directory), "rss")["growth"]
                size = sum(f.stat().st_size for f in directory.iterdir() if f.name != "forward.onnx")
                rows.append((model, variant, heap, growth, size, time.perf_counter() - start))
                print(rows[-1], flush=True)
                write_table(rows, args, versions)


def write_table(rows, args, versions: dict) -> None:
    base = {r[0]: r for r in rows if r[1] == BASELINE}
    lines = [
        "# Peak training memory on ONNX Runtime's training API (standard artifacts)", "",
        f"Command: `python benchmarks/ort_training_memory.py --models {' '.join(args.models)} --batch {args.batch}"
        f" --density {args.density} --keep {args.keep}`", "",
        f"onnxruntime-training {versions.get('onnxruntime')} (`.venv-ort-training`), onnx {versions.get('onnx')}; "
        f"batch {args.batch}, density {args.density}, SAP keep {args.keep}; arena and memory patterns off, one "
        "thread; MB = 2^20 bytes; ratio = variant / generate_artifacts masked-dense. Heap peak: second step, "
        "LD_PRELOAD shim; RSS growth: VmHWM over three steps, default glibc. Fresh process per cell.", "",
        "| model | variant | heap peak MB | ratio | RSS growth MB | ratio | artifact bytes MB |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for model, variant, heap, growth, size, _ in rows:
        ref = base.get(model)
        heap_ratio = f"{heap / ref[2]:.2f}" if ref else "–"
        growth_ratio = f"{growth / ref[3]:.2f}" if ref and ref[3] else "–"
        lines.append(f"| {model} | {variant} | {heap / MB:.1f} | {heap_ratio} | {growth / MB:.1f} | {growth_ratio} | "
                     f"{size / MB:.2f} |")  # fmt: skip
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        {"generate": child_generate, "measure": child_measure}[sys.argv[2]](*sys.argv[3:])
    else:
        main()
