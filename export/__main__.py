"""CLI: ``python -m export MODEL --runtime onnxruntime --out DIR [--density 0.1 ...]``.

Builds the model, draws ERK random masks at ``--density`` (seeded) to fix the per-layer nnz,
exports the round's graphs and prints the manifest path and export time.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from .exporter import WRITERS, export
from .layout import ENCODINGS, LAYOUTS, GraphKey, erk_nnz


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--runtime", choices=sorted(WRITERS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--input-shape", type=int, nargs=3, default=(1, 8, 8))
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--scaled", action="store_true")
    parser.add_argument("--keep", type=float, default=1.0)
    parser.add_argument("--layout", choices=LAYOUTS, default="sparse")
    parser.add_argument("--encoding", choices=ENCODINGS, default="int32")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--extrusion", action="store_true", help="BaE marked sets, penalty and lr in the step")
    parser.add_argument("--penalty", choices=["squared", "norm"], default="squared")
    parser.add_argument("--conv", choices=["direct", "im2col"], default="direct")
    args = parser.parse_args(argv)
    width = int(args.width) if args.width is not None and args.model != "mobilenetv2" else args.width
    flags = dict(width=width, scaled=args.scaled, keep=args.keep, layout=args.layout,
                 encoding=args.encoding, weight_decay=args.weight_decay, conv=args.conv,
                 extrusion=args.extrusion, penalty=args.penalty)  # fmt: skip
    base = GraphKey(args.model, tuple(args.input_shape), args.num_classes, args.batch_size, (), **flags)
    key = replace(base, layer_nnz=erk_nnz(base.build(), args.density))
    manifest = export(key, args.out, args.runtime)
    print(f"wrote {args.out}/manifest.json ({manifest.runtime}, export {manifest.export_seconds:.2f} s)")


if __name__ == "__main__":
    main()
