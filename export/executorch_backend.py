"""ExecuTorch adapter: lower a traced step to a ``.pte`` program and run it with the pybindings.

The traced graph already contains forward, backward and the SGD update, so the program's plain
``forward`` method is the training step (state in, state out): no training-specific runtime API
is needed on the device. Training graphs are not delegated to XNNPACK (NaNs seen); kernels are
the portable/optimized ones the wheel ships. The planned arena size
(``non_const_buffer_sizes``) is the exact memory plan of one step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge
from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer
from torch import Tensor, fx

from .runtime import GraphRunner

EXTENSION = ".pte"


def lower(gm: fx.GraphModule, example: list[Tensor]):
    exported = torch.export.export(gm, tuple(example), strict=False)
    edge = to_edge(exported, compile_config=EdgeCompileConfig(_check_ir_validity=False))
    return edge.to_executorch(ExecutorchBackendConfig())


def planned_arena_bytes(program) -> int:
    return int(sum(program.executorch_program.execution_plan[0].non_const_buffer_sizes))


def write(gm: fx.GraphModule, example: list[Tensor], inputs: list[str], outputs: list[str], path: Path) -> dict:
    program = lower(gm, example)
    path.write_bytes(program.buffer)
    return {"planned_arena_bytes": planned_arena_bytes(program)}


class Runner(GraphRunner):
    def _open(self, path: Path):
        data = path.read_bytes()
        module = _load_for_executorch_from_buffer(data)
        return data, module  # the module reads from ``data``: keep the bytes alive with it

    def _run(self, handle, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, module = handle
        outputs = module.forward(tuple(torch.from_numpy(array) for array in feed.values()))
        return [output.numpy().copy() for output in outputs]
