"""ERK densities, random masks, f_decay and the prune/grow adjustment on hand-built tensors."""

import math

import pytest
import torch

from fedmef.activation_pruning import standardize
from fedmef.sparsity import (
    adjustment_counts,
    apply_masks,
    channel_means,
    erk_densities,
    layer_densities,
    lowest_active,
    prune_and_grow,
    prune_fraction,
    random_masks,
    sparse_init_scale,
    top_inactive,
)


def weighted_mean(densities, shapes):
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    return sum(densities[n] * sizes[n] for n in sizes) / sum(sizes.values())


def test_erk_two_layers_no_saturation():
    # raw ERK scores sum(shape)/prod(shape): a = 20/100, b = 52/100; budget 0.3*200 = 60
    # epsilon = 60 / (20 + 52) = 5/6 -> a = 1/6, b = 52/120
    shapes = {"a": (10, 10), "b": (2, 50)}
    densities = erk_densities(shapes, 0.3)
    assert densities["a"] == pytest.approx(1 / 6)
    assert densities["b"] == pytest.approx(52 / 120)
    assert weighted_mean(densities, shapes) == pytest.approx(0.3)


def test_erk_small_layer_saturates_and_rest_is_rescaled():
    # a: raw 5/4, b: raw 20/100; epsilon = 52/25 makes a 2.6 -> dense (4 weights);
    # the remaining budget 48 goes to b alone: 48/100
    shapes = {"a": (1, 4), "b": (10, 10)}
    densities = erk_densities(shapes, 0.5)
    assert densities == {"a": 1.0, "b": pytest.approx(0.48)}
    assert weighted_mean(densities, shapes) == pytest.approx(0.5)


def test_erk_rescaling_cascades_to_a_second_layer():
    # budget 0.45*120 = 54. Pass 1: epsilon = 54/35, a = 1.93 (dense), b = 0.96 (fits).
    # Pass 2: epsilon = (54-4)/30 = 5/3, b = 1.04 -> dense. Pass 3: c = (54-4-16)/100 = 0.34
    shapes = {"a": (1, 4), "b": (2, 8), "c": (10, 10)}
    densities = erk_densities(shapes, 0.45)
    assert densities == {"a": 1.0, "b": 1.0, "c": pytest.approx(0.34)}
    assert weighted_mean(densities, shapes) == pytest.approx(0.45)


def test_erk_density_one_is_all_dense():
    densities = erk_densities({"a": (3, 3), "b": (4, 5)}, 1.0)
    assert densities == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5])
def test_erk_rejects_density_outside_unit_interval(density):
    with pytest.raises(ValueError, match="density"):
        erk_densities({"a": (2, 2)}, density)


def test_random_masks_have_exact_active_counts():
    shapes = {"a": (10, 10), "b": (2, 50), "c": (1, 4)}
    masks = random_masks({k: shapes[k] for k in ("a", "b")}, 0.3, torch.Generator().manual_seed(0))
    assert {n: int(m.sum()) for n, m in masks.items()} == {"a": 17, "b": 43}  # round(16.67), round(43.33)
    assert all(m.dtype == torch.bool and m.shape == shapes[n] for n, m in masks.items())
    saturated = random_masks({"a": (1, 4), "b": (10, 10)}, 0.5, torch.Generator().manual_seed(0))
    assert {n: int(m.sum()) for n, m in saturated.items()} == {"a": 4, "b": 48}


def test_random_masks_keep_at_least_one_weight_and_are_seeded():
    masks = random_masks({"a": (10, 10)}, 0.001, torch.Generator().manual_seed(3))
    assert int(masks["a"].sum()) == 1  # round(0.1) = 0, lifted to 1
    again = random_masks({"a": (10, 10)}, 0.001, torch.Generator().manual_seed(3))
    assert torch.equal(masks["a"], again["a"])
    other = random_masks({"a": (10, 10)}, 0.5, torch.Generator().manual_seed(4))
    assert not torch.equal(other["a"], random_masks({"a": (10, 10)}, 0.5, torch.Generator().manual_seed(5))["a"])


def test_prune_fraction_cosine_schedule():
    assert prune_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert prune_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert prune_fraction(25, 0.3, 100) == pytest.approx(0.15 * (1 + math.sqrt(0.5)))
    assert prune_fraction(100, 0.3, 100) == pytest.approx(0.0, abs=1e-15)
    assert prune_fraction(101, 0.3, 100) == 0.0
    assert prune_fraction(500, 0.3, 100) == 0.0


def test_adjustment_counts_truncate_and_cap_by_inactive():
    masks = {
        "few_active": torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool),  # int(0.3*4) = 1
        "many_active": torch.tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=torch.bool),  # int(0.3*9)=2, 1 inactive
        "dense": torch.ones(5, dtype=torch.bool),  # nothing to grow into
    }
    assert adjustment_counts(masks, 0.3) == {"few_active": 1, "many_active": 1, "dense": 0}
    assert adjustment_counts(masks, 0.0) == {"few_active": 0, "many_active": 0, "dense": 0}


def test_lowest_active_ignores_inactive_zeros():
    # The reference took topk(|w|, largest=False) over the whole tensor: with pruned zeros it
    # selected only already-pruned weights. Here only active positions 1, 4, 6, 7 are eligible.
    weight = torch.tensor([0.0, 0.4, 0.0, 0.0, -0.2, 0.0, 0.9, -0.05])
    mask = torch.tensor([0, 1, 0, 0, 1, 0, 1, 1], dtype=torch.bool)
    assert sorted(lowest_active(weight, mask, 2).tolist()) == [4, 7]
    assert sorted(lowest_active(weight, mask, 3).tolist()) == [1, 4, 7]
    assert lowest_active(weight, mask, 0).tolist() == []


def test_top_inactive_picks_largest_scores_among_inactive_only():
    scores = torch.tensor([9.0, 0.1, 9.0, 0.7, 0.3])
    mask = torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool)
    assert top_inactive(scores, mask, 2).tolist() == [3, 4]
    assert top_inactive(scores, mask, 0).tolist() == []


def test_prune_and_grow_hand_built_layer():
    # flat positions:        0     1     2     3     4      5     6     7
    weight = torch.tensor([[0.5, -0.1, 0.01, 0.3], [0.0, -0.05, 0.8, 0.0]])  # 0.01: stale inactive value
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)  # active 0,1,3,5,6
    scores = torch.tensor([9.0, 9.0, 0.2, 9.0, 0.7, 9.0, 9.0, 0.4]).view(2, 4)  # 9: active, must be ignored
    weights = {"w": weight, "fixed": torch.tensor([1.0, 0.0, 2.0])}
    masks = {"w": mask, "fixed": torch.tensor([1, 0, 1], dtype=torch.bool)}
    growth = {"w": scores, "fixed": torch.tensor([0.0, 5.0, 0.0])}
    effective = {n: w * masks[n] for n, w in weights.items()}  # plain layers: the masked weight
    new_weights, new_masks = prune_and_grow(weights, effective, masks, growth, {"w": 2, "fixed": 0})

    # prune the two smallest active |w| (positions 5: 0.05, 1: 0.1), grow 4 (0.7) and 7 (0.4)
    expected_mask = torch.tensor([[1, 0, 0, 1], [1, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(new_masks["w"], expected_mask)
    assert torch.equal(new_weights["w"], torch.tensor([[0.5, 0.0, 0.0, 0.3], [0.0, 0.0, 0.8, 0.0]]))
    assert int(new_masks["w"].sum()) == int(mask.sum())
    grown = new_masks["w"] & ~mask
    assert torch.equal(grown.flatten().nonzero().flatten(), torch.tensor([4, 7]))
    assert torch.all(new_weights["w"][grown] == 0)
    assert torch.all(new_weights["w"][~new_masks["w"]] == 0)
    # a layer with count 0 is unchanged
    assert torch.equal(new_masks["fixed"], masks["fixed"])
    assert torch.equal(new_weights["fixed"], weights["fixed"])
    # inputs are not modified in place
    assert weight[0, 2] == 0.01 and torch.equal(mask, torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0]], dtype=torch.bool))


def test_prune_and_grow_keeps_counts_on_random_layers():
    gen = torch.Generator().manual_seed(0)
    shapes = {"conv": (4, 3, 3, 3), "fc": (10, 20)}
    masks = random_masks(shapes, 0.2, gen)
    weights = {n: torch.randn(s, generator=gen) * masks[n] for n, s in shapes.items()}
    scores = {n: torch.rand(s, generator=gen) for n, s in shapes.items()}
    counts = adjustment_counts(masks, 0.3)
    new_weights, new_masks = prune_and_grow(weights, weights, masks, scores, counts)
    for name in shapes:
        assert int(new_masks[name].sum()) == int(masks[name].sum())
        assert int((new_masks[name] & ~masks[name]).sum()) == counts[name]  # grown only from inactive
        assert int((masks[name] & ~new_masks[name]).sum()) == counts[name]
        assert torch.all(new_weights[name][~new_masks[name]] == 0)
        survivors = masks[name] & new_masks[name]
        assert torch.equal(new_weights[name][survivors], weights[name][survivors])


# -- standardised (NSConv) layers: rank and grow by the effective weight -------------------------------------------


def effective(weight, mask):
    """An NSConv's effective weight with gain 1 (one output channel per row)."""
    return standardize(weight, mask.float(), torch.ones(weight.shape[0], 1))


def test_prune_ranks_by_effective_not_raw_magnitude():
    # active raw [0, 3, 2, 7]: mean 3, so raw 0 is effective -3/sqrt(26) and raw 3 is effective 0
    weight = torch.tensor([[0.0, 3.0, 2.0, 7.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    growth = {"w": torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])}
    _, raw_masks = prune_and_grow({"w": weight}, {"w": weight}, {"w": mask}, growth, {"w": 1})
    _, new_masks = prune_and_grow({"w": weight}, {"w": effective(weight, mask)}, {"w": mask}, growth, {"w": 1}, {"w"})
    assert raw_masks["w"].tolist() == [[False, True, True, True, True]]  # raw ranking cuts a used weight
    assert new_masks["w"].tolist() == [[True, False, True, True, True]]  # the effective zero goes


def test_pruning_an_effective_zero_and_growing_leave_the_other_effective_weights_unchanged():
    # channel 0 active raw [1, 3, 2, 6]: mean 3, sum of squared deviations 14; position 1 is effective 0
    # channel 1 active raw [4, 8]: nothing moves there
    weight = torch.tensor([[1.0, 3.0, 2.0, 6.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0, 0.0, 8.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 1]], dtype=torch.bool)
    growth = {"w": torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.1, 0.9], [0.0] * 6])}
    before = effective(weight, mask)
    assert before[0, 1] == 0
    new_weights, new_masks = prune_and_grow({"w": weight}, {"w": before}, {"w": mask}, growth, {"w": 1}, {"w"})
    assert new_masks["w"].tolist() == [[True, False, True, True, False, True], [True, False, False, False, False, True]]
    assert new_weights["w"][0].tolist() == [1.0, 0.0, 2.0, 6.0, 0.0, 3.0]  # grown at the channel mean 3
    after = effective(new_weights["w"], new_masks["w"])
    assert after[0, 5] == 0  # the grown weight's effective value
    kept = mask & new_masks["w"]
    assert torch.equal(after[kept], before[kept])  # mean 3 and deviations' sum of squares 14 unchanged


def test_grown_weight_is_effective_zero_and_leaves_the_kept_channel_statistics_alone():
    # pruning two weights of [1, 3, 2, 6] keeps [1, 6] (mean 3.5); both grown weights start at 3.5
    weight = torch.tensor([[1.0, 3.0, 2.0, 6.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    growth = {"w": torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.5, 0.9]])}
    new_weights, new_masks = prune_and_grow({"w": weight}, {"w": effective(weight, mask)}, {"w": mask}, growth,
                                            {"w": 2}, {"w"})  # fmt: skip
    assert new_weights["w"].tolist() == [[1.0, 0.0, 0.0, 6.0, 3.5, 3.5]]
    after = effective(new_weights["w"], new_masks["w"])
    assert after[0, 4] == 0 and after[0, 5] == 0
    kept_only = torch.tensor([[1, 0, 0, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(after, effective(new_weights["w"] * kept_only, kept_only))  # as if nothing had grown


def test_plain_layer_grows_at_zero_even_when_listed_nowhere():
    weight = torch.tensor([[1.0, 3.0, 0.0]])
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    new_weights, _ = prune_and_grow({"w": weight}, {"w": weight}, {"w": mask}, {"w": torch.tensor([[0, 0, 1.0]])},
                                    {"w": 1})  # fmt: skip
    assert new_weights["w"].tolist() == [[0.0, 3.0, 0.0]]


def test_channel_means_over_active_weights_per_output_unit():
    weight = torch.tensor([[1.0, 9.0, 3.0], [5.0, 0.0, 0.0], [7.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    assert channel_means(weight, mask).tolist() == [[2.0] * 3, [5.0] * 3, [0.0] * 3]  # no active weight: 0


def test_apply_masks_zeroes_in_place_and_layer_densities():
    weights = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    masks = {"a": torch.tensor([1.0, 0.0, 0.0, 1.0])}
    apply_masks(weights, masks)
    assert torch.equal(weights["a"], torch.tensor([1.0, 0.0, 0.0, 4.0]))
    assert layer_densities({"a": masks["a"].bool(), "b": torch.ones(3, dtype=torch.bool)}) == {"a": 0.5, "b": 1.0}


def test_sparse_init_scale_uses_active_fan_in():
    mask = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    scale = sparse_init_scale(mask)
    assert scale.shape == (3, 1)
    assert torch.allclose(scale.flatten(), torch.tensor([2.0, 1.0, 2.0]))  # empty rows: fan-in clamped to 1
