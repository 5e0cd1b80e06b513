"""Write the FileDescriptorSet of the pinned flwr's protobuf files (the build's input to protoc).

flwr ships no .proto files, only generated ``*_pb2`` modules; each of them embeds its serialized
FileDescriptorProto. This script collects them (dependencies first) into one FileDescriptorSet,
which ``protoc --descriptor_set_in=...`` compiles to Java like the .proto sources would.

    python flwr_descriptors.py OUT.desc [--flwr-version 1.41.0]

With --flwr-version it refuses any other installed flwr (the Fleet protocol is internal to Flower
and changes between releases; the Java client is verified against one pinned version).

Imports only flwr and protobuf, so it runs with the interpreter that has the pinned flwr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import flwr
import flwr.proto
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """Every flwr/proto/*.proto file of the installed flwr, each after its dependencies."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        for dep in fd.dependencies:
            add(dep)
        seen.add(fd.name)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        out.file.append(proto)

    for module in sorted(pkgutil.iter_modules(flwr.proto.__path__), key=lambda m: m.name):
        if module.name.endswith("_pb2"):
            add(importlib.import_module(f"flwr.proto.{module.name}").DESCRIPTOR)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write flwr's FileDescriptorSet.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--flwr-version", help="fail unless this flwr version is installed")
    args = parser.parse_args(argv)
    if args.flwr_version and flwr.__version__ != args.flwr_version:
        print(f"flwr {flwr.__version__} installed, {args.flwr_version} required", file=sys.stderr)
        return 1
    fds = descriptor_set()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(fds.SerializeToString(deterministic=True))
    print(f"flwr {flwr.__version__}: {len(fds.file)} proto files -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
