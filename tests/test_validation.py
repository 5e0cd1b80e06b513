"""Update validation (``server/validation.py``): hand-built instructions and replies, each
corruption rejected with its reason, honest replies (every method's shape) accepted, and the
federation's round counting rejections and keeping the model when every reply is rejected."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, Metadata, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from numpy.lib import format as npy

from fedmef import protocol as p
from fedmef import wire
from fedmef.config import RunConfig
from fedmef.models import prunable_layers
from fedmef.partitions import partition
from fedmef.task import initial_model
from python_client.eager import EagerBackend
from server.schedule import local_plan, round_phase
from server.server_app import Federation
from server.validation import ExpectedUpdate, RejectedUpdate, check_update, norm_scores, read_reply

CAP = 1000
#: layer fc: 10 weights, active at 0, 3 and 7; one dense bias of shape (2,)
MASK = p.mask_bits(np.isin(np.arange(10), [0, 3, 7]))
STATE = {"v/fc": np.array([1.0, 2.0, 3.0], np.float32), "m/fc": MASK, "d/fc.bias": np.zeros(2, np.float32)}


def expected(plan=None) -> ExpectedUpdate:
    return ExpectedUpdate.of(STATE, {"grow/fc": 2} if plan is None else plan, {"fc": 10})


def honest() -> tuple[dict, dict]:
    arrays = {"v/fc": np.array([1.0, 2.0, 5.0], np.float32), "d/fc.bias": np.array([0.0, 1.0], np.float32),
              "gi/fc": np.array([1, 4], np.int32), "gv/fc": np.array([0.5, 0.25], np.float32)}  # fmt: skip
    return arrays, {p.NUM_EXAMPLES: 5, p.TRAIN_LOSS: 0.3, p.SECONDS: 1.5}


def test_honest_reply_passes_and_its_norm_is_the_distance_from_the_sent_model():
    arrays, metrics = honest()
    assert check_update(expected(), arrays, metrics, CAP) == pytest.approx(math.sqrt(2.0**2 + 1.0**2))


def test_layout_follows_the_instruction():
    layout = expected()
    assert layout.keys() == {"v/fc", "d/fc.bias", "gi/fc", "gv/fc"}
    assert layout.max_bytes() == 4 * 3 + 4 * 2 + 8 * 2
    assert expected({}).keys() == {"v/fc", "d/fc.bias"}  # no adjustment: no growth arrays
    assert expected({"readjust/fc": 1}).keys() == {"v/fc", "d/fc.bias", "m/fc"}  # FedDST: its own mask


def _set(key, value):
    return lambda arrays, metrics: arrays.__setitem__(key, value)


def _metric(key, value):
    return lambda arrays, metrics: metrics.__setitem__(key, value)


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda a, m: a.pop("v/fc"), r"missing keys \['v/fc'\]"),
        (lambda a, m: a.pop("gv/fc"), r"missing keys \['gv/fc'\]"),
        (_set("x/fc", np.zeros(0, np.int32)), r"unexpected keys \['x/fc'\]"),
        (_set("m/fc", np.zeros(0, np.uint8)), r"unexpected keys \['m/fc'\]"),  # only FedDST's reply has masks
        (_set("v/fc", np.ones(3, np.float16)), "v/fc has dtype <f2, expected <f4"),
        (_set("v/fc", np.ones(3, ">f4")), "v/fc has dtype >f4, expected <f4"),
        (_set("gi/fc", np.array([1, 4], np.uint32)), "gi/fc has dtype <u4, expected <i4"),
        (_set("v/fc", np.ones(2, np.float32)), r"v/fc has shape \(2,\), the mask has 3 active"),
        (_set("v/fc", np.ones((3, 1), np.float32)), r"v/fc has shape \(3, 1\), the mask has 3 active"),
        (_set("d/fc.bias", np.ones((1, 2), np.float32)), r"d/fc.bias has shape \(1, 2\), expected \(2,\)"),
        (_set("d/fc.bias", np.array([0.0, np.nan], np.float32)), "d/fc.bias holds NaN or Inf"),
        (_set("v/fc", np.array([0.0, np.inf, 1.0], np.float32)), "v/fc holds NaN or Inf"),
        (_set("gv/fc", np.array([-np.inf, 1.0], np.float32)), "gv/fc holds NaN or Inf"),
        (_set("gi/fc", np.array([1, 10], np.int32)), r"growth of fc: indices outside 0..9"),
        (_set("gi/fc", np.array([-1, 4], np.int32)), r"growth of fc: indices outside 0..9"),
        (_set("gi/fc", np.array([4, 4], np.int32)), "growth of fc: duplicated indices"),
        (_set("gi/fc", np.array([1, 3], np.int32)), "growth of fc: indices at active weights"),
        (_set("gv/fc", np.array([0.5], np.float32)), r"growth of fc: indices \(2,\) and magnitudes \(1,\) differ"),
        (_set("gv/fc", np.array([0.5, -0.25], np.float32)), "growth of fc: negative magnitudes"),
        # a third candidate cannot fit the layout's bytes: the cheap payload bound catches it first
        (lambda a, m: a.update({"gi/fc": np.array([1, 4, 5], np.int32), "gv/fc": np.ones(3, np.float32)}),
         "payload of 44 bytes, the layout allows at most 36"),
        (_set("v/fc", np.ones(10**6, np.float32)), "payload of 4000024 bytes, the layout allows at most 36"),
        (_set("v/fc", [1.0, 2.0, 3.0]), "not arrays"),
        (_metric(p.NUM_EXAMPLES, 0), "num-examples 0 outside 1..1000"),
        (_metric(p.NUM_EXAMPLES, -3), "num-examples -3 outside 1..1000"),
        (_metric(p.NUM_EXAMPLES, CAP + 1), "num-examples 1001 outside 1..1000"),
        (_metric(p.NUM_EXAMPLES, 5.0), "metric num-examples is float 5.0, expected int"),
        (_metric(p.NUM_EXAMPLES, True), "metric num-examples is bool True, expected int"),
        (_metric(p.TRAIN_LOSS, math.nan), "metric train-loss is nan"),
        (_metric(p.TRAIN_LOSS, "0.3"), "metric train-loss is str '0.3', expected float"),
        (_metric(p.SECONDS, -1.0), "seconds -1.0 is negative"),
        (_metric("round", 3), r"metrics: missing \[\], unexpected \['round'\]"),
        (lambda a, m: m.pop(p.SECONDS), r"metrics: missing \['seconds'\], unexpected \[\]"),
    ],
)
def test_each_corruption_is_rejected_with_its_reason(corrupt, reason):
    arrays, metrics = honest()
    check_update(expected(), arrays, metrics, CAP)  # the honest reply passes, so the corruption is the cause
    corrupt(arrays, metrics)
    with pytest.raises(RejectedUpdate, match=reason):
        check_update(expected(), arrays, metrics, CAP)


def test_growth_with_fewer_candidates_than_asked_is_honest():
    """A layer with fewer inactive weights than the count offers what it has (the contract's §5)."""
    arrays, metrics = honest()
    arrays["gi/fc"], arrays["gv/fc"] = np.zeros(0, np.int32), np.zeros(0, np.float32)
    check_update(expected(), arrays, metrics, CAP)


def feddst_reply(positions) -> tuple[dict, dict]:
    arrays, metrics = honest()
    del arrays["gi/fc"], arrays["gv/fc"]
    arrays["m/fc"] = p.mask_bits(np.isin(np.arange(10), positions))
    arrays["v/fc"] = np.arange(1, len(positions) + 1, dtype=np.float32)
    return arrays, metrics


def test_feddst_reply_with_its_own_mask_passes_and_its_norm_is_dense():
    arrays, metrics = feddst_reply([0, 5, 7])  # pruned 3, regrew 5: values 1, 2, 3 at 0, 5, 7
    # dense sent: 1 at 0, 2 at 3, 3 at 7; dense reply: 1 at 0, 2 at 5, 3 at 7; bias moved by 1
    norm = check_update(expected({"readjust/fc": 1}), arrays, metrics, CAP)
    assert norm == pytest.approx(math.sqrt(2.0**2 + 2.0**2 + 1.0))
    check_update(expected({"readjust/fc": 1}), *feddst_reply([0, 7]), CAP)  # grew fewer than it pruned


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a.update({"m/fc": p.mask_bits(np.isin(np.arange(10), [0, 1, 5, 7]))}),
         "m/fc keeps 4 weights, more than the 3 sent"),
        (lambda a: a.update({"m/fc": a["m/fc"] | np.array([0, 1], np.uint8)}), "m/fc sets padding bits past weight 9"),
        (lambda a: a.update({"m/fc": np.zeros(1, np.uint8)}), r"m/fc has shape \(1,\), 10 weights need 2"),
        (lambda a: a.update({"v/fc": np.ones(2, np.float32)}), r"v/fc has shape \(2,\), the mask has 3 active"),
        (lambda a: a.pop("m/fc"), r"missing keys \['m/fc'\]"),
    ],
)
def test_feddst_mask_faults_are_rejected(change, reason):
    arrays, metrics = feddst_reply([0, 5, 7])
    change(arrays)
    with pytest.raises(RejectedUpdate, match=reason):
        check_update(expected({"readjust/fc": 1}), arrays, metrics, CAP)


def test_norm_scores_count_mads_above_the_median():
    # median 3, absolute deviations 2, 1, 0, 1, 97: MAD 1
    assert norm_scores([1.0, 2.0, 3.0, 4.0, 100.0]) == [-2.0, -1.0, 0.0, 1.0, 97.0]
    assert norm_scores([5.0, 900.0]) == [0.0, 0.0]  # too few replies for a statistic
    # nearly equal norms: the MAD is floored at a tenth of the median (2.0): 0.2
    assert norm_scores([2.0, 2.0, 2.0, 3.0]) == pytest.approx([0.0, 0.0, 0.0, 5.0])


def _reply(group_id: str, content: RecordDict) -> Message:
    metadata = Metadata(run_id=1, message_id="", src_node_id=7, dst_node_id=0, reply_to_message_id="",
                        group_id=group_id, created_at=0.0, ttl=60.0, message_type=p.TRAIN)  # fmt: skip
    return Message(content, metadata=metadata)


def _content(arrays: dict, metrics: dict) -> RecordDict:
    return RecordDict({p.UPDATE: ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                       p.METRICS: MetricRecord(metrics)})  # fmt: skip


def test_read_reply_takes_the_records_apart_and_checks_the_round():
    arrays, metrics = honest()
    got, got_metrics = read_reply(_reply("3", _content(arrays, metrics)), 3)
    assert got.keys() == arrays.keys() and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert got_metrics == metrics
    with pytest.raises(RejectedUpdate, match="reply for round '2', this is round 3"):
        read_reply(_reply("2", _content(arrays, metrics)), 3)
    with pytest.raises(RejectedUpdate, match=r"reply records \['metrics'\], expected"):
        read_reply(_reply("3", RecordDict({p.METRICS: MetricRecord(metrics)})), 3)
    with pytest.raises(RejectedUpdate, match="records of the wrong type: ConfigRecord, MetricRecord"):
        read_reply(_reply("3", RecordDict({p.UPDATE: ConfigRecord({"a": 1}), p.METRICS: MetricRecord(metrics)})), 3)


def test_read_reply_refuses_payloads_that_would_allocate_more_than_they_carry():
    arrays, metrics = honest()
    content = _content(arrays, metrics)
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})  # 4 TB
    content[p.UPDATE]["v/fc"] = Array(dtype="float32", shape=(3,), stype="numpy.ndarray", data=stream.getvalue())
    with pytest.raises(RejectedUpdate, match=r"v/fc: unreadable .*header <f4 \(1000000000000,\) does not match 0"):
        read_reply(_reply("3", content), 3)
    content[p.UPDATE]["v/fc"] = Array(dtype="float32", shape=(3,), stype="torch.Tensor", data=b"")
    with pytest.raises(RejectedUpdate, match="v/fc: serialization 'torch.Tensor', expected 'numpy.ndarray'"):
        read_reply(_reply("3", content), 3)


@pytest.mark.parametrize("method", ["fedavg", "feddst", "fedmef", "server-dst"])
def test_real_eager_replies_of_every_method_pass_on_an_adjustment_round(method):
    """The eager reference client's reply (FedDST's with its own masks, FedMef's with growth) fits."""
    config = RunConfig.from_run_config({"method": method, "backend": "torch", "local-epochs": 1, "num-rounds": 4,
                                        "adjust-interval": 2, "adjust-end-fraction": 1.0})  # fmt: skip
    model = initial_model(config)
    phase = round_phase(config, 2)
    assert phase.adjust == (method != "fedavg")
    plan, marked = wire.encode_plan(local_plan(config, phase, model), phase.round)
    state = wire.encode_state(model) | marked
    numels = {name: layer.weight.numel() for name, layer in prunable_layers(model).items()}
    layout = ExpectedUpdate.of(state, plan, numels)
    assert layout.masks_in_reply == (method == "feddst") and bool(layout.growth) == (method in ("fedmef", "server-dst"))
    data = partition(config, 0, 10).train
    update, loss = EagerBackend(config).train(state, plan, data.x, data.y)
    metrics = {p.NUM_EXAMPLES: len(data), p.TRAIN_LOSS: loss, p.SECONDS: 1.0}
    assert check_update(layout, update, metrics, config.max_num_examples) > 0


# --- the federation's round with replies that fail validation ----------------------------------


class EchoGrid:
    """Four nodes that answer a train instruction with what they were sent, nudged by 0.01 per node
    (honest, distinct small updates), except the ``bad`` nodes' faults."""

    def __init__(self, bad: dict):
        self.bad = bad  # node -> "nan" | "huge"

    def get_node_ids(self):
        return [1, 2, 3, 4]

    def send_and_receive(self, messages, timeout):
        replies = []
        for message in messages:
            node = message.metadata.dst_node_id
            state = {k: a.numpy() for k, a in message.content[p.STATE].items()}
            update = {k: a + np.float32(0.01 * node) for k, a in state.items() if k.startswith(("v/", "d/"))}
            key = sorted(update)[0]
            if self.bad.get(node) == "nan":
                update[key] = np.full_like(update[key], np.nan)
            elif self.bad.get(node) == "huge":
                update[key] = update[key] + np.float32(100.0)
            metrics = {p.NUM_EXAMPLES: 10 * node, p.TRAIN_LOSS: 0.5, p.SECONDS: 0.1}
            replies.append(Message(_content(update, metrics), reply_to=message))
        return replies


@pytest.fixture
def federation(tmp_path, monkeypatch):
    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):  # what a ServerApp process has
        monkeypatch.setattr(TaskIdentity, name, value)
    config = RunConfig.from_run_config({"backend": "torch", "num-rounds": 2, "clients-per-round": 4,
                                        "output-dir": str(tmp_path), "reject-norm-mads": 20.0})  # fmt: skip

    def make(bad: dict) -> Federation:
        return Federation(EchoGrid(bad), config)

    return make


def test_round_rejects_bad_updates_counts_them_and_aggregates_the_rest(federation, capsys):
    fed = federation({2: "nan", 4: "huge"})
    fed.round(round_phase(fed.config, 1))
    row = fed.rundir.rows[-1]
    assert (row["clients"], row["rejected"], row["failures"]) == (2, 2, 0)
    assert row["max_norm_mads"] > 20
    log = capsys.readouterr().out
    assert "round 1: rejected the update of node 2: d/conv1.bias holds NaN or Inf" in log
    assert "round 1: rejected the update of node 4: update norm" in log and "MADs above the median" in log


def test_round_with_every_reply_rejected_keeps_the_model_and_says_so(federation, capsys):
    fed = federation({node: "nan" for node in (1, 2, 3, 4)})
    before = wire.encode_state(fed.model)
    fed.round(round_phase(fed.config, 1))
    after = wire.encode_state(fed.model)
    assert all(np.array_equal(before[key], after[key]) for key in before)
    assert (fed.rundir.rows[-1]["clients"], fed.rundir.rows[-1]["rejected"]) == (0, 4)
    assert "round 1: every reply rejected, keeping the previous model" in capsys.readouterr().out
    fed.round(round_phase(fed.config, 2))
    fed.rundir.finish(fed.model, {"clients": 0})
    report = (fed.rundir.path / "report.md").read_text()
    line = "- rejected updates (server/validation.py): 8; every reply rejected, previous model kept, in rounds [1, 2]"
    assert line in report
    header = (fed.rundir.path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "rejected" in header and "max_norm_mads" in header
