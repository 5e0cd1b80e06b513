"""A client's share of the data: built from the run config, or read from a partition directory.

``partition(config, id, n)`` is what every Python client trains on (the run config alone fixes
it). ``save``/``load`` write and read the language-neutral partition directory of
``docs/protocol.md`` §8, which non-Python clients (the Java node, the Android app) read::

    python -m fedmef.partitions OUT_DIR --partition-id 0 --num-partitions 3 [key=value ...]

writes ``train_x.npy`` (float32 N×C×H×W), ``train_y.npy`` (int64 N), ``val_x.npy``, ``val_y.npy``
and ``partition.json``. No torch here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fedmef.config import RunConfig
from fedmef.data import ClientData, Split, client_data, load_dataset

FILES = ("train_x.npy", "train_y.npy", "val_x.npy", "val_y.npy")


def partition(config: RunConfig, partition_id: int, num_partitions: int) -> ClientData:
    train, _ = load_dataset(config.dataset, config.data_path, config.test_fraction, config.seed)
    return client_data(
        train, num_partitions, partition_id, config.partition, config.dirichlet_alpha,
        config.validation_fraction, config.seed,
    )  # fmt: skip


def save(data: ClientData, directory: str | Path, meta: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = (data.train.x, data.train.y, data.validation.x, data.validation.y)
    for name, array, dtype in zip(FILES, arrays, ("float32", "int64") * 2, strict=True):
        np.save(directory / name, np.ascontiguousarray(array, dtype=dtype))
    (directory / "partition.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return directory


def load(directory: str | Path) -> ClientData:
    directory = Path(directory)
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"partition directory {directory} lacks {missing}")
    tx, ty, vx, vy = (np.load(directory / name, allow_pickle=False) for name in FILES)
    for x, y, split in ((tx, ty, "train"), (vx, vy, "val")):
        if x.dtype != np.float32 or y.dtype != np.int64 or x.ndim != 4 or y.shape != (len(x),):
            raise ValueError(f"{directory}: {split}_x must be float32 N×C×H×W and {split}_y int64 N")
    return ClientData(Split(tx, ty), Split(vx, vy))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fedmef.partitions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("out")
    parser.add_argument("--partition-id", type=int, required=True)
    parser.add_argument("--num-partitions", type=int, required=True)
    parser.add_argument("overrides", nargs="*", help="run-config key=value pairs (dataset, seed, partition, ...)")
    args = parser.parse_intermixed_args(argv)  # OUT, the options and key=value pairs in any order
    values = {}
    for pair in args.overrides:
        key, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"expected key=value, got {pair!r}")
        values[key] = json.loads(value) if value[:1] in "-0123456789tf[{\"" else value
    config = RunConfig.from_run_config(values)
    data = partition(config, args.partition_id, args.num_partitions)
    meta = {"dataset": config.dataset, "partition_id": args.partition_id, "num_partitions": args.num_partitions,
            "seed": config.seed, "partition": config.partition, "train": len(data.train), "val": len(data.validation)}
    print(save(data, args.out, meta))


if __name__ == "__main__":
    main()
