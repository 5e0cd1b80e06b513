"""Server aggregation: sample-weighted averages of sparse values and of reported growth gradients."""

import numpy as np
import pytest
import torch

from server.aggregation import RunningAggregate, growth_scores, weighted_average


def test_weighted_average_hand_computed():
    updates = [
        ({"v/fc": np.array([1.0, 2.0], np.float32), "d/fc.bias": np.array([[0.0]], np.float32),
          "m/fc": np.array([255], np.uint8), "gi/fc": np.array([3], np.int32)}, 1),
        ({"v/fc": np.array([4.0, -1.0], np.float32), "d/fc.bias": np.array([[3.0]], np.float32)}, 3),
    ]  # fmt: skip
    averaged = weighted_average(updates)
    assert set(averaged) == {"v/fc", "d/fc.bias"}  # masks and growth signals are not averaged
    assert averaged["v/fc"].dtype == np.float32
    assert averaged["v/fc"].tolist() == [(1 * 1 + 4 * 3) / 4, (2 * 1 - 1 * 3) / 4]  # [3.25, -0.25]
    assert averaged["d/fc.bias"].shape == (1, 1) and averaged["d/fc.bias"].tolist() == [[2.25]]


def test_single_update_is_returned_unchanged():
    values = np.array([0.1, 0.2, 0.3], np.float32)
    assert np.array_equal(weighted_average([({"v/a": values}, 17)])["v/a"], values)


def test_shape_disagreement_raises():
    updates = [({"v/fc": np.zeros(3, np.float32)}, 1), ({"v/fc": np.zeros(4, np.float32)}, 1)]
    with pytest.raises(ValueError, match="disagree on the shape of v/fc"):
        weighted_average(updates)


def test_no_updates_raises():
    with pytest.raises(ValueError, match="no client updates"):
        weighted_average([])


def test_growth_scores_sum_weighted_by_sample_count():
    updates = [
        ({"gi/fc": np.array([0, 3], np.int32), "gv/fc": np.array([2.0, 1.0], np.float32)}, 1),
        ({"gi/fc": np.array([3, 5], np.int32), "gv/fc": np.array([4.0, 8.0], np.float32),
          "gi/conv": np.array([1], np.int32), "gv/conv": np.array([0.5], np.float32)}, 3),
        ({"v/fc": np.zeros(2, np.float32)}, 4),  # a client that reported no growth signal still counts
    ]  # fmt: skip
    scores = growth_scores(updates, {"fc": 6, "conv": 2})
    # weights 1/8 and 3/8: position 3 gets 1/8 * 1 + 3/8 * 4
    expected_fc = torch.tensor([2 / 8, 0.0, 0.0, 1 / 8 + 12 / 8, 0.0, 24 / 8], dtype=torch.float32)
    assert torch.equal(scores["fc"], expected_fc)
    assert torch.equal(scores["conv"], torch.tensor([0.0, 1.5 / 8], dtype=torch.float32))


def test_growth_scores_without_updates_are_zero():
    scores = growth_scores([], {"fc": 3})
    assert torch.equal(scores["fc"], torch.zeros(3, dtype=torch.float32))


def test_running_aggregate_takes_an_outlier_back_out():
    rng = np.random.default_rng(0)
    honest = [({"v/fc": rng.standard_normal(5).astype(np.float32), "gi/fc": np.array([1, 4], np.int32),
                "gv/fc": rng.random(2).astype(np.float32)}, int(n)) for n in (3, 5, 7)]  # fmt: skip
    outlier = ({"v/fc": np.full(5, 1e6, np.float32), "gi/fc": np.array([0], np.int32),
                "gv/fc": np.array([1e6], np.float32)}, 11)  # fmt: skip
    aggregate = RunningAggregate({"fc": 6})
    for arrays, count in honest[:1] + [outlier] + honest[1:]:
        aggregate.add(arrays, count)
    aggregate.remove(*outlier)
    assert aggregate.clients == 3 and aggregate.total == 15
    np.testing.assert_allclose(aggregate.average()["v/fc"], weighted_average(honest)["v/fc"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(aggregate.growth_scores()["fc"], growth_scores(honest, {"fc": 6})["fc"], atol=1e-9)


def test_running_aggregate_refuses_what_does_not_line_up():
    aggregate = RunningAggregate({})
    aggregate.add({"v/fc": np.zeros(3, np.float32), "d/b": np.zeros(1, np.float32)}, 1)
    with pytest.raises(ValueError, match=r"disagree on their keys: \['d/b'\]"):
        aggregate.add({"v/fc": np.zeros(3, np.float32)}, 1)
    with pytest.raises(ValueError, match="reports 0 training samples"):
        aggregate.add({"v/fc": np.zeros(3, np.float32), "d/b": np.zeros(1, np.float32)}, 0)
