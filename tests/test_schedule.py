"""The server's round schedule: adjustment rounds, extrusion windows, learning-rate decay, and the
marked sets against the cut."""

import math

import pytest
import torch

from fedmef.config import RunConfig
from fedmef.extrusion import marked_sets
from fedmef.models import prunable_layers
from fedmef.sparsity import adjustment_counts
from fedmef.task import initial_model
from server.schedule import RoundPhase, adjust, local_plan, next_adjustment, round_phase


def config(**overrides):
    values = dict(num_rounds=40, adjust_interval=10, adjust_end_fraction=0.6, adjust_alpha=0.3, extrusion_rounds=2)
    return RunConfig(**(values | overrides))  # T_end = 24: adjustments at 10 and 20 only


def f_decay(t, t_end=24, alpha=0.3):
    return alpha / 2 * (1 + math.cos(math.pi * t / t_end))


def test_fedmef_adjusts_at_10_and_20_and_extrudes_the_two_rounds_ending_there():
    cfg = config(method="fedmef")
    phases = {t: round_phase(cfg, t) for t in range(1, 41)}
    assert [t for t, p in phases.items() if p.adjust] == [10, 20]
    assert [t for t, p in phases.items() if p.extrude] == [9, 10, 19, 20]
    assert [phases[t].window_offset for t in (9, 10, 19, 20)] == [0, 1, 0, 1]
    assert phases[9].fraction == phases[10].fraction == pytest.approx(f_decay(10))
    assert phases[19].fraction == phases[20].fraction == pytest.approx(f_decay(20))
    quiet = [p for t, p in phases.items() if t not in (9, 10, 19, 20)]
    assert all(p.fraction == 0.0 and p.window_offset == 0 and not p.adjust and not p.extrude for p in quiet)


def test_learning_rate_decays_geometrically():
    cfg = config(lr=0.1, lr_final=0.001)
    assert round_phase(cfg, 1).lr == pytest.approx(0.1)
    assert round_phase(cfg, 40).lr == pytest.approx(0.001)
    assert round_phase(cfg, 14).lr == pytest.approx(0.1 * 0.01 ** (13 / 39))
    ratios = [round_phase(cfg, t + 1).lr / round_phase(cfg, t).lr for t in range(1, 40)]
    assert ratios == pytest.approx([0.01 ** (1 / 39)] * 39)


def test_single_round_run_uses_the_initial_lr():
    assert round_phase(config(num_rounds=1), 1).lr == pytest.approx(0.05)


@pytest.mark.parametrize("method", ["feddst", "server-dst"])
def test_dst_methods_adjust_without_extrusion(method):
    cfg = config(method=method, backend="torch")
    phases = [round_phase(cfg, t) for t in range(1, 41)]
    assert [p.round for p in phases if p.adjust] == [10, 20]
    assert not any(p.extrude for p in phases)
    assert round_phase(cfg, 9).fraction == 0.0 and round_phase(cfg, 10).fraction == pytest.approx(f_decay(10))


def test_fedmef_no_bae_adjusts_without_extrusion():
    phases = [round_phase(config(method="fedmef-no-bae"), t) for t in range(1, 41)]
    assert [p.round for p in phases if p.adjust] == [10, 20] and not any(p.extrude for p in phases)


def test_fedavg_never_adjusts_or_extrudes():
    cfg = config(method="fedavg")
    phase = round_phase(cfg, 10)
    assert phase == RoundPhase(round=10, lr=phase.lr, adjust=False, extrude=False, fraction=0.0, window_offset=0)
    assert not any(round_phase(cfg, t).adjust or round_phase(cfg, t).extrude for t in range(1, 41))


def test_longer_window():
    cfg = config(extrusion_rounds=3)
    assert [t for t in range(1, 41) if round_phase(cfg, t).extrude] == [8, 9, 10, 18, 19, 20]
    assert [round_phase(cfg, t).window_offset for t in (8, 9, 10)] == [0, 1, 2]


def test_adjustment_at_t_end_is_skipped_because_its_fraction_is_zero():
    cfg = config(adjust_end_fraction=0.5)  # T_end = 20: f_decay(20) = 0, nothing would move
    phase = round_phase(cfg, 20)
    assert not phase.adjust and phase.fraction == 0.0
    assert not round_phase(cfg, 19).extrude and not phase.extrude
    assert round_phase(cfg, 10).adjust


def test_next_adjustment():
    cfg = config()
    assert [next_adjustment(cfg, t) for t in (1, 9, 10, 11, 20, 21, 24)] == [10, 10, 10, 20, 20, None, None]
    assert next_adjustment(config(num_rounds=15, adjust_end_fraction=1.0), 12) is None  # 20 is past the run


@pytest.mark.parametrize("round_num", [0, -1, 41])
def test_round_outside_the_run_raises(round_num):
    with pytest.raises(ValueError, match="outside 1..40"):
        round_phase(config(), round_num)


def test_marked_set_is_exactly_what_the_next_cut_prunes_when_nothing_trains_in_between():
    cfg = config(method="fedmef", density=0.3)
    model = initial_model(cfg)
    with torch.no_grad():  # NSConv weights away from their init, so raw and effective rankings differ
        for layer in prunable_layers(model).values():
            layer.weight.add_(0.3 * torch.randn_like(layer.weight)).mul_(layer.mask)
    masks = {name: layer.mask.bool().clone() for name, layer in prunable_layers(model).items()}
    marked = local_plan(cfg, round_phase(cfg, 9), model).marked  # first round of the window
    assert local_plan(cfg, round_phase(cfg, 10), model).marked.keys() == marked.keys()
    scores = {name: torch.rand(mask.numel()) for name, mask in masks.items()}
    adjust(model, scores, round_phase(cfg, 10).fraction)
    assert sum(idx.numel() for idx in marked.values()) > 0
    for name, layer in prunable_layers(model).items():
        pruned = (masks[name] & ~layer.mask.bool()).flatten().nonzero().flatten()
        assert sorted(pruned.tolist()) == sorted(marked[name].tolist()), name


def test_fedmef_marks_by_effective_weight_not_by_raw_magnitude():
    cfg = config(method="fedmef", density=0.3)
    model = initial_model(cfg)
    masks = {name: layer.mask.bool() for name, layer in prunable_layers(model).items()}
    marked = local_plan(cfg, round_phase(cfg, 9), model).marked
    raw = marked_sets({name: layer.weight.detach() for name, layer in prunable_layers(model).items()}, masks,
                      round_phase(cfg, 9).fraction)  # fmt: skip
    assert marked.keys() == raw.keys()
    assert any(set(marked[n].tolist()) != set(raw[n].tolist()) for n in marked if n != "fc")  # NSConvs differ
    assert set(marked["fc"].tolist()) == set(raw["fc"].tolist())  # the plain classifier does not


def test_feddst_plan_asks_clients_to_readjust_and_report_no_growth():
    cfg = config(method="feddst", backend="torch")
    model = initial_model(cfg)
    adjusting = local_plan(cfg, round_phase(cfg, 10), model)
    masks = {name: layer.mask.bool() for name, layer in prunable_layers(model).items()}
    assert adjusting.readjust_counts == adjustment_counts(masks, f_decay(10)) and not adjusting.growth_counts
    assert not adjusting.marked
    assert not local_plan(cfg, round_phase(cfg, 9), model).readjust_counts
    server = local_plan(config(method="server-dst"), round_phase(cfg, 10), model)
    assert server.growth_counts == adjusting.readjust_counts and not server.readjust_counts
