"""ExecuTorch memory planning (``executorch_backend.best_fit``): a valid plan that beats ``greedy``
where greedy's shared objects waste space."""

import random

import pytest
import torch

pytest.importorskip("executorch")

from executorch.exir.memory_planning import greedy  # noqa: E402
from executorch.exir.tensor import TensorSpec  # noqa: E402

from export.executorch_backend import best_fit  # noqa: E402


class _Module:  # what the planners read of a graph module
    input_mem_buffer_sizes = None


def specs(*tensors: tuple[int, int, int]) -> list[TensorSpec]:
    """(bytes, first use, last use) each."""
    out = []
    for size, start, end in tensors:
        spec = TensorSpec.from_tensor(torch.empty(size, dtype=torch.uint8))
        spec.lifetime = [start, end]
        out.append(spec)
    return out


def assert_valid(result, planned: list[TensorSpec]) -> None:
    """No two tensors alive at once share a byte, and every tensor lies inside its arena."""
    spans = [(s.lifetime, result.spec_dict[s].mem_offset, s.allocated_memory) for s in planned]
    for spec, (_, offset, size) in zip(planned, spans, strict=True):
        assert offset >= 0 and offset + size <= result.bufsizes[result.spec_dict[spec].mem_id]
    for i, ((a0, a1), lo_a, size_a) in enumerate(spans):
        for (b0, b1), lo_b, size_b in spans[i + 1:]:
            if not (a1 < b0 or b1 < a0):
                assert lo_a + size_a <= lo_b or lo_b + size_b <= lo_a


def test_two_tensors_after_a_larger_one_share_its_space():
    # greedy: A's object (100 B) takes B, C no longer fits on top of B -> a second object, 160 B
    planned = specs((96, 0, 10), (64, 11, 20), (64, 11, 20))
    assert greedy(16, set(planned), _Module(), None, 0).bufsizes[1] == 96 + 64
    result = best_fit(16, set(planned), _Module(), None, 0)
    assert result.bufsizes[1] == 128
    assert_valid(result, planned)


def test_random_lifetimes_give_valid_plans_no_larger_than_the_live_peak_bound():
    rng = random.Random(0)
    for _ in range(20):
        tensors = []
        for _ in range(60):
            start = rng.randrange(100)
            tensors.append((rng.choice([16, 48, 64, 1000, 4096]), start, start + rng.randrange(30)))
        planned = specs(*tensors)
        result = best_fit(16, set(planned), _Module(), None, 0)
        assert_valid(result, planned)
        peak = max(sum(s.allocated_memory for s in planned if s.lifetime[0] <= t <= s.lifetime[1]) for t in range(130))
        assert peak <= result.bufsizes[1] <= sum(s.allocated_memory for s in planned)
