"""ExecuTorch lowering: ``positional_topk`` keeps the stable top-k set (ties to the smaller positions)
that the eager reference and ONNX Runtime select, in torch and in ExecuTorch's kernels; and both
convolution forms (direct, im2col) lower and train alike where the eager reference has no twin
(a fused ReLU that drops positives: its backward mask comes from the compressed copy)."""

from dataclasses import replace

import pytest
import torch

pytest.importorskip("executorch")

from executorch.exir import EdgeCompileConfig, to_edge  # noqa: E402
from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer  # noqa: E402

from export.executorch_backend import positional_topk  # noqa: E402
from export.layout import GraphKey  # noqa: E402
from fedmef import wire  # noqa: E402
from fedmef.training import LocalPlan  # noqa: E402

from .export_support import assert_close_state, batch, exported_backend, keyed_model, marked_sets  # noqa: E402


def stable_topk_positions(x: torch.Tensor, k: int) -> list[set[int]]:
    order = x.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return [set(row) for row in order.tolist()]


def tied_rows() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 4, (6, 50), generator=gen).float()  # heavy ties at every threshold
    rows[1] = 0.0  # all tied
    rows[2, :7] = 9.0  # exactly k above the rest
    rows[3] = torch.relu(torch.randn(50, generator=gen))  # a ReLU output: ties at zero
    rows[4, 10:20] = -2.5  # negative ties
    rows[5] = torch.randn(50, generator=gen) * 1e-38  # subnormal gaps
    return rows


class _TopK(torch.nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return positional_topk(x, self.k)


@pytest.mark.parametrize("k", [1, 7, 25, 50])
def test_positional_topk_keeps_the_stable_set_in_torch_and_executorch(k):
    x = tied_rows()
    expected = stable_topk_positions(x, k)
    values, positions = positional_topk(x, k)
    assert [set(row) for row in positions.tolist()] == expected
    assert torch.equal(values, x.gather(1, positions))
    program = to_edge(torch.export.export(_TopK(k), (x,)), compile_config=EdgeCompileConfig(_check_ir_validity=False))
    buffer = program.to_executorch().buffer
    et_values, et_positions = _load_for_executorch_from_buffer(buffer).forward((x,))
    assert [set(row) for row in et_positions.tolist()] == expected
    assert torch.equal(et_values, x.gather(1, et_positions.long()))


@pytest.mark.parametrize("encoding", ["int32", "bits"])
def test_direct_and_im2col_programs_train_alike(encoding, tmp_path):
    key, model = keyed_model(GraphKey("cnn", (1, 8, 8), 10, 16, (), width=8, scaled=True, keep=0.4,
                                      encoding=encoding, extrusion=True))  # fmt: skip
    plan = LocalPlan(epochs=1, batch_size=16, lr=0.05, weight_decay=0.0, seed=3, marked=marked_sets(model),
                     lambda_max=0.05, lambda_ramp=0.75, window_offset_rounds=1, window_rounds=2)  # fmt: skip
    scalars, marked = wire.encode_plan(plan, 2)
    x, y = batch(key, seed=9, count=2 * key.batch_size)
    updates = []
    for conv in ("direct", "im2col"):
        backend = exported_backend(replace(key, conv=conv), tmp_path / conv, "executorch")
        updates.append(backend.train(wire.encode_state(model) | marked, scalars, x, y)[0])
    direct, im2col = updates
    assert sorted(direct) == sorted(im2col)
    assert_close_state(im2col, direct, list(direct))
