"""benchmarks.metrics and the runner's resumable state, on hand-made rows with exact expectations."""

from __future__ import annotations

import math

import pytest

from benchmarks import metrics
from benchmarks.accuracy import Benchmark, Variant, is_done, load_benchmark, load_state, pending, save_state

NAN = float("nan")


def row(round_num, accuracy, pre=NAN, adjusted=0, clients=2, failures=0, up=200, down=500, dense=1000, seconds=1.0,
        loss=1.0, pre_loss=NAN):  # fmt: skip
    return {
        "round": str(round_num), "accuracy": str(accuracy), "pre_adjust_accuracy": "nan" if math.isnan(pre) else
        str(pre), "adjusted": str(adjusted), "clients": str(clients), "failures": str(failures), "bytes_up": str(up),
        "bytes_down": str(down), "dense_bytes": str(dense), "seconds": str(seconds), "loss": str(loss),
        "pre_adjust_loss": str(pre_loss),
    }  # fmt: skip


ROWS = [
    row(1, 0.50),
    row(2, 0.70, pre=0.75, adjusted=1, loss=0.5, pre_loss=0.25),  # cut 0.05, round-to-round -0.20 (a rise)
    row(3, 0.80),
    row(4, 0.60, pre=0.90, adjusted=1, clients=1, failures=1, up=100, loss=0.5, pre_loss=0.375),  # cut 0.30, round 0.20
]


def test_drops_are_pre_minus_post_and_previous_minus_current():
    assert metrics.adjustment_rounds(ROWS) == [2, 4]
    assert metrics.cut_drops(ROWS) == pytest.approx([0.05, 0.30])
    assert metrics.cut_loss_rises(ROWS) == [0.25, 0.125]
    assert metrics.round_drops(ROWS) == pytest.approx([-0.20, 0.20])


def test_round_drop_skips_an_adjustment_in_the_first_round():
    rows = [row(1, 0.4, pre=0.5, adjusted=1), row(2, 0.6)]
    assert metrics.round_drops(rows) == []
    assert metrics.cut_drops(rows) == pytest.approx([0.1])


def test_bytes_per_client_divides_upload_by_replies_and_download_by_sampled_clients():
    up, down = metrics.bytes_per_client(ROWS)
    assert up == pytest.approx((200 * 3 + 100) / 7)  # 7 replies over 4 rounds
    assert down == pytest.approx(500 * 4 / 8)  # 8 clients sampled


def test_summary():
    s = metrics.summarize(ROWS, seed=4)
    assert (s.final_accuracy, s.best_accuracy, s.dense_bytes, s.seconds_per_round) == (0.6, 0.8, 1000.0, 1.0)
    assert s.cut_drop == pytest.approx(0.175)
    assert s.round_drop == pytest.approx(0.0)
    assert s.first_cut_drop == pytest.approx(0.05) and s.first_cut_loss_rise == 0.25
    assert s.cut_loss_rise == 0.1875 and s.seed == 4
    dense = metrics.summarize([row(1, 0.5)])
    assert math.isnan(dense.cut_drop) and math.isnan(dense.first_cut_drop) and math.isnan(dense.first_cut_loss_rise)


def test_mean_std_and_format():
    assert metrics.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std
    assert metrics.mean_std([4.0]) == (4.0, 0.0)
    assert metrics.mean_std([1.0, NAN, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert metrics.format_pm([0.9, 0.92, 0.94], scale=100) == "92.00 ± 2.00"
    assert metrics.format_pm([NAN]) == "n/a"
    assert metrics.format_pm([1.23456], digits=1) == "1.2 ± 0.0"


def test_mean_curve_uses_rounds_common_to_all_runs():
    a, b = [row(1, 0.2), row(2, 0.4)], [row(1, 0.4), row(2, 0.6), row(3, 0.9)]
    rounds, values = metrics.mean_curve([a, b])
    assert rounds == [1, 2] and values == pytest.approx([0.3, 0.5])


def summary(final=0.9, cut=0.02, up=200.0, dense=1000.0, first=0.01, rise=0.1, seed=0):
    return metrics.RunSummary(final, final, cut, cut, up, 2 * up, dense, 1.0, first, rise, rise, seed)


def test_targets_are_computed_from_the_summaries():
    found = metrics.targets({
        "fedavg": [summary(final=0.95)], "feddst": [summary(final=0.90)],
        "fedmef": [summary(final=0.935, up=300.0, first=0.03, rise=0.07)], "fedmef-no-bae": [summary(rise=0.1)],
    })  # fmt: skip
    # +3.5 pts; -1.5 pts; first cut 3 <= 3 points; loss rise 0.07 vs 0.10: 30 % smaller; upload 0.3 > 0.25
    assert [t.met for t in found] == [True, True, True, True, False]
    assert "chance" not in found[0].detail and "seed 0: 3.00 points" == found[2].detail
    assert "seed 0: 0.0700 vs 0.1000 (30 % smaller)" == found[3].detail and "0.300×" in found[4].detail
    assert "near chance" in metrics.targets({"fedmef": [summary()], "feddst": [summary(final=0.1)]})[0].detail
    assert metrics.targets({"fedavg": [summary()]}) == []


def test_per_seed_targets_need_every_seed_and_pair_runs_by_seed():
    fedmef = [summary(seed=0, first=0.01, rise=0.05), summary(seed=1, first=0.035, rise=0.08)]
    without = [summary(seed=1, rise=0.1), summary(seed=0, rise=0.1)]  # listed in another order
    cut, bae = metrics.targets({"fedmef": fedmef, "fedmef-no-bae": without})[:2]
    assert not cut.met and cut.detail == "seed 0: 1.00, seed 1: 3.50 points"  # seed 1 exceeds 3 points
    assert not bae.met
    assert bae.detail == "seed 0: 0.0500 vs 0.1000 (50 % smaller); seed 1: 0.0800 vs 0.1000 (20 % smaller)"
    no_cuts = metrics.targets({"fedmef": [summary(first=NAN, rise=NAN)], "fedmef-no-bae": [summary(rise=NAN)]})
    assert [t.met for t in no_cuts[:2]] == [None, None] and no_cuts[1].detail == "no cut"


def test_memory_columns_from_the_first_table_with_matching_rows():
    text = "\n".join([
        "# Memory", "| a | b |", "|---|---|", "| x | y |", "",
        "| model | variant | analytic MB | ORT heap peak MB | ORT ratio | number |", "|---|---|---|---|---|---|",
        "| cnn | dense | 1.5 | 2.0 (2.1) | 1.00 | 7 |", "| cnn | `fedmef-int32` | 0.5 | 0.9 (1.0) | 0.45 | 7 |",
        "| resnet18 | dense | 50 | 60 | 1.00 | 7 |",
    ])  # fmt: skip
    rows_for = {"fedavg": ["cnn", "dense"], "fedmef": ["cnn", "fedmef-int32"], "feddst": ["cnn", "masked-dense"]}
    assert metrics.memory_columns(text, rows_for) == (
        ["analytic MB", "ORT heap peak MB"], {"fedavg": ["1.5", "2.0 (2.1)"], "fedmef": ["0.5", "0.9 (1.0)"]},
    )  # fmt: skip
    assert metrics.memory_columns(text, {"fedavg": ["resnet18", "dense"]}, max_columns=1) == (
        ["analytic MB"], {"fedavg": ["50"]},
    )  # fmt: skip
    assert metrics.memory_columns("no table here", rows_for) is None
    assert metrics.memory_columns(text, {"fedmef": ["fedmef"]}) is None  # no row names the method


BENCH = Benchmark("t", "out", "t", 2, (0, 1), (Variant("fedavg", "fedavg"), Variant("big", "fedmef", {"lr": 0.1})),
                  {"num-rounds": 2})  # fmt: skip


def test_plan_is_seed_major_and_merges_overrides():
    plan = BENCH.plan()
    assert [key for key, _ in plan] == ["fedavg/seed0", "big/seed0", "fedavg/seed1", "big/seed1"]
    assert plan[1][1] == {"num-rounds": 2, "lr": 0.1, "method": "fedmef", "seed": 0}


def test_resumable_state_skips_only_finished_runs_with_the_same_overrides(tmp_path):
    plan = BENCH.plan()
    (tmp_path / "fedavg-seed0").mkdir()
    (tmp_path / "fedavg-seed0" / "metrics.csv").write_text("round\n")
    state = {
        "fedavg/seed0": {"status": "done", "overrides": plan[0][1], "metrics": "fedavg-seed0/metrics.csv"},
        "big/seed0": {"status": "running", "overrides": plan[1][1]},  # interrupted: redo
        "fedavg/seed1": {  # other overrides: redo
            "status": "done", "overrides": plan[2][1] | {"lr": 9.0}, "metrics": "fedavg-seed0/metrics.csv",
        },
        "big/seed1": {"status": "done", "overrides": plan[3][1], "metrics": "missing/metrics.csv"},  # lost metrics
    }  # fmt: skip
    assert pending(plan, state, tmp_path) == ["big/seed0", "fedavg/seed1", "big/seed1"]
    assert is_done(state["fedavg/seed0"], plan[0][1], tmp_path)
    assert not is_done(None, plan[0][1], tmp_path)
    save_state(tmp_path / "index.json", state)
    assert load_state(tmp_path / "index.json") == state
    assert load_state(tmp_path / "absent.json") == {}


def test_load_benchmark(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('name = "b"\nseeds = [3]\nmethods = ["feddst"]\n[run-config]\ndensity = 0.2\n'
                    '[variants.slow]\nmethod = "fedmef"\nlr = 0.01\n')  # fmt: skip
    bench = load_benchmark(path, data_path=str(tmp_path), extra={"num-rounds": 5})
    assert bench.output == "accuracy-b" and bench.seeds == (3,) and bench.supernodes == 10
    assert bench.variants == (Variant("feddst", "feddst"), Variant("slow", "fedmef", {"lr": 0.01}))
    assert bench.run_config == {"density": 0.2, "num-rounds": 5, "data-path": str(tmp_path.resolve())}
    (tmp_path / "empty.toml").write_text('name = "e"\n')
    with pytest.raises(ValueError, match="no methods"):
        load_benchmark(tmp_path / "empty.toml")
