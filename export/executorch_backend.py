"""ExecuTorch writer: lower a traced step to a ``.pte`` program whose ``forward`` is the step.

The traced graph already contains forward, backward and the SGD update, so the program's plain
``forward`` method is the training step (state in, state out): no training-specific runtime API
is needed on the device. Training graphs are not delegated to XNNPACK (NaNs seen); kernels are
the portable/optimized ones the wheel ships. The planned arena size
(``non_const_buffer_sizes``) is the exact memory plan of one step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge
from torch import Tensor, fx

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
