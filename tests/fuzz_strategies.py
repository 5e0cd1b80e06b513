"""Fuzzing properties and their hypothesis strategies, shared by ``tests/test_fuzz.py`` (CI, a few
hundred examples each) and ``benchmarks/fuzz.py`` (10,000 and more).

Each property draws one input and checks one promise of a parser or validator that takes data from
the other side of the wire: it returns normally or raises one of its documented error types, never
anything else, and the update validator accepts every honest reply and rejects every corrupted one.
``PROPERTIES`` maps each property's name to (strategy, check).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, Message, Metadata, MetricRecord, RecordDict
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy

from fedmef import protocol as p
from fedmef import wire
from fedmef.config import RunConfig
from fedmef.manifest import FileEntry, Graph, Manifest, TensorSpec
from fedmef.training import LocalPlan
from server.validation import ExpectedUpdate, RejectedUpdate, check_update, read_reply

from .model_support import masked_cnn

MAX_NUM_EXAMPLES = 10_000
DECODE_ERRORS = (ValueError, KeyError)  # fedmef.wire.decode_state / decode_plan, fedmef.protocol
small_floats = st.floats(-1e3, 1e3, width=32)


# --- one round's instruction and an honest reply to it ----------------------------------------


@dataclass
class Round:
    expected: ExpectedUpdate
    arrays: p.Arrays  # an honest reply's update
    metrics: dict


def _float32(draw, shape) -> np.ndarray:
    return draw(hnp.arrays(np.float32, shape, elements=small_floats))


@st.composite
def honest_rounds(draw) -> Round:
    """A small random layout (layers, masks, dense params; growth counts or FedDST's readjustment)
    and an honest reply: values at the right positions, growth at inactive ones, sane metrics."""
    numels = {f"l{i}": draw(st.integers(1, 40)) for i in range(draw(st.integers(1, 3)))}
    masks = {name: np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) for name, n in numels.items()}
    state = {p.MASK + name: p.mask_bits(mask) for name, mask in masks.items()}
    state |= {p.VALUES + name: _float32(draw, int(mask.sum())) for name, mask in masks.items()}
    shapes = draw(st.lists(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), max_size=2))
    state |= {f"{p.DENSE}p{i}.bias": _float32(draw, shape) for i, shape in enumerate(shapes)}
    counts = {name: draw(st.integers(0, n + 2)) for name, n in numels.items()} if draw(st.booleans()) else {}
    readjust = bool(counts) and draw(st.booleans())  # FedDST's plan: readjust/ counts instead of grow/
    plan = {(p.READJUST if readjust else p.GROW) + name: count for name, count in counts.items()}
    expected = ExpectedUpdate.of(state, plan, numels)
    arrays = {key: _float32(draw, a.shape) for key, a in state.items() if key.startswith(p.DENSE)}
    for name, mask in masks.items():
        if readjust:  # FedDST: the client's own mask, keeping at most as many weights
            new = np.zeros(numels[name], bool)
            keep = draw(st.lists(st.integers(0, numels[name] - 1), max_size=int(mask.sum()), unique=True))
            new[keep] = True
            arrays[p.MASK + name] = p.mask_bits(new)
            mask = new
        arrays[p.VALUES + name] = _float32(draw, int(mask.sum()))
    for name, count in expected.growth.items():
        inactive = np.flatnonzero(~masks[name])
        chosen = draw(st.permutations(inactive.tolist()))[: min(count, len(inactive))]
        arrays[p.GROWTH_INDICES + name] = np.array(chosen, np.int32)
        magnitudes = hnp.arrays(np.float32, len(chosen), elements=st.floats(0, 1e3, width=32))
        arrays[p.GROWTH_MAGNITUDES + name] = draw(magnitudes)
    metrics = {p.NUM_EXAMPLES: draw(st.integers(1, MAX_NUM_EXAMPLES)), p.TRAIN_LOSS: draw(st.floats(0, 100)),
               p.SECONDS: draw(st.floats(0, 1e4))}  # fmt: skip
    return Round(expected, arrays, metrics)


def check_honest_reply_accepted(case: Round) -> None:
    norm = check_update(case.expected, case.arrays, case.metrics, MAX_NUM_EXAMPLES)
    assert math.isfinite(norm) and norm >= 0


# --- corruptions: each one makes an honest reply invalid ---------------------------------------

WRONG_DTYPES = ["float64", "float16", ">f4", "int64", ">i4", "int8", "uint16", "bool", "complex64"]


def _pick(draw, arrays: p.Arrays, prefixes: tuple[str, ...], min_size: int = 0) -> str | None:
    keys = sorted(k for k, a in arrays.items() if k.startswith(prefixes) and a.size >= min_size)
    return draw(st.sampled_from(keys)) if keys else None


def _corrupt_arrays(draw, case: Round) -> str | None:
    """Corrupt ``case.arrays`` in place; returns what was done, or None when nothing applied."""
    arrays, expected = case.arrays, case.expected
    kind = draw(st.sampled_from(["drop", "extra", "dtype", "length", "shape", "nonfinite", "growth", "mask"]))
    key = _pick(draw, arrays, ("v/", "d/", "m/", "gi/", "gv/"))
    if kind == "drop" and key:
        del arrays[key]
    elif kind == "extra":
        extra = draw(st.sampled_from(["x/l0", "v/unknown", "junk", "gi/unknown", "d/unknown"]))
        arrays[extra] = np.zeros(1, np.float32)
    elif kind == "dtype" and key:
        dtype = np.dtype(draw(st.sampled_from([d for d in WRONG_DTYPES if np.dtype(d) != arrays[key].dtype])))
        arrays[key] = arrays[key].astype(dtype)
    elif kind == "length" and (key := _pick(draw, arrays, ("v/", "gv/"))):
        arrays[key] = np.append(arrays[key], np.float32(0)) if draw(st.booleans()) or not arrays[key].size \
            else arrays[key][:-1]  # fmt: skip
    elif kind == "shape" and (key := _pick(draw, arrays, ("d/",))):
        arrays[key] = np.append(arrays[key], np.float32(0)).astype(np.float32)
    elif kind == "nonfinite" and (key := _pick(draw, arrays, ("v/", "d/", "gv/"), min_size=1)):
        arrays[key] = arrays[key].copy()
        position = draw(st.integers(0, arrays[key].size - 1))
        arrays[key].reshape(-1)[position] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "growth" and (key := _pick(draw, arrays, ("gi/",), min_size=1)):
        return _corrupt_growth(draw, case, key[len("gi/") :])
    elif kind == "mask" and expected.masks_in_reply:
        name = draw(st.sampled_from(sorted(expected.numels)))
        bits = arrays[p.MASK + name].copy()
        bits[-1] ^= 1 if expected.numels[name] % 8 else 0  # a padding bit, or
        bits[0] ^= 0 if expected.numels[name] % 8 else 0x80  # the first weight: values no longer fit
        arrays[p.MASK + name] = bits
    else:
        return None
    return kind


def _corrupt_growth(draw, case: Round, name: str) -> str:
    indices, magnitudes = case.arrays[p.GROWTH_INDICES + name].copy(), case.arrays[p.GROWTH_MAGNITUDES + name].copy()
    numel, active = case.expected.numels[name], case.expected.active[name]
    options = ["outside", "negative", "mismatch", "too-many"] + (["duplicate"] if len(indices) > 1 else [])
    kind = draw(st.sampled_from(options + (["active"] if len(active) else [])))
    if kind == "outside":
        indices[0] = draw(st.sampled_from([-1, numel, np.iinfo(np.int32).max, np.iinfo(np.int32).min]))
    elif kind == "negative":
        magnitudes[0] = -draw(st.floats(2.0**-20, 1e3, width=32))
    elif kind == "mismatch":
        magnitudes = magnitudes[:-1]
    elif kind == "too-many":
        count = case.expected.growth[name]
        indices = np.resize(indices, count + 1)  # repeats: too many and duplicated
        magnitudes = np.resize(magnitudes, count + 1)
    elif kind == "duplicate":
        indices[1] = indices[0]
    else:
        indices[0] = draw(st.sampled_from(active.tolist()))
    case.arrays[p.GROWTH_INDICES + name], case.arrays[p.GROWTH_MAGNITUDES + name] = indices, magnitudes
    return "growth-" + kind


def _corrupt_metrics(draw, case: Round) -> str:
    metrics = case.metrics
    key = draw(st.sampled_from(sorted(metrics)))
    kind = draw(st.sampled_from(["drop", "extra", "type", "value"]))
    if kind == "drop":
        del metrics[key]
    elif kind == "extra":
        metrics["round"] = 3
    elif kind == "type":
        metrics[key] = draw(st.sampled_from(["3", True, None, [1.0]] + ([2.0] if key == p.NUM_EXAMPLES else [])))
    elif key == p.NUM_EXAMPLES:
        metrics[key] = draw(st.sampled_from([0, -1, MAX_NUM_EXAMPLES + 1, 2**62]))
    else:
        metrics[key] = draw(st.sampled_from([math.nan, math.inf, -math.inf] + ([-1.0] if key == p.SECONDS else [])))
    return "metrics-" + kind


@st.composite
def corrupted_rounds(draw) -> tuple[Round, str]:
    case = draw(honest_rounds())
    done = _corrupt_arrays(draw, case) if draw(st.booleans()) else None
    return case, done or _corrupt_metrics(draw, case)


def check_corrupted_reply_rejected(drawn: tuple[Round, str]) -> None:
    case, _ = drawn
    try:
        check_update(case.expected, case.arrays, case.metrics, MAX_NUM_EXAMPLES)
    except RejectedUpdate:
        return
    raise AssertionError("a corrupted reply was accepted")


# --- arbitrary replies: the validator only ever rejects ----------------------------------------

junk_arrays = hnp.arrays(
    st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(), hnp.unicode_string_dtypes()),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)
junk_values = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none(),
                        st.lists(st.floats(), max_size=3))  # fmt: skip


@st.composite
def arbitrary_replies(draw) -> tuple[Round, p.Arrays, dict]:
    case = draw(honest_rounds())
    keys = st.sampled_from(sorted(case.arrays) + ["x/l0", "junk", "v/", "gi/l9"])
    arrays = draw(st.dictionaries(keys, st.one_of(junk_arrays, junk_values), max_size=8))
    if draw(st.booleans()):
        arrays = case.arrays | arrays  # mostly honest, some entries replaced
    metric_keys = st.one_of(st.sampled_from([p.NUM_EXAMPLES, p.TRAIN_LOSS, p.SECONDS]), st.text(max_size=5))
    metrics = draw(st.dictionaries(metric_keys, junk_values, max_size=4))
    return case, arrays, case.metrics | metrics if draw(st.booleans()) else metrics


def check_validator_only_rejects(drawn: tuple[Round, p.Arrays, dict]) -> None:
    case, arrays, metrics = drawn
    try:
        assert math.isfinite(check_update(case.expected, arrays, metrics, MAX_NUM_EXAMPLES))
    except RejectedUpdate:
        pass


# --- Flower replies with damaged .npy payloads (server.validation.read_reply) ------------------


def _huge_header() -> bytes:
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    return stream.getvalue() + bytes(8)


@st.composite
def flower_replies(draw) -> tuple[Round, Message, bool]:
    """An honest reply as Flower delivers it, some arrays' bytes damaged, maybe for another round."""
    case, records, damaged = draw(honest_rounds()), {}, False
    for key, value in case.arrays.items():
        array = Array(value)
        data, stype = array.data, array.stype
        action = draw(st.sampled_from(["keep", "keep", "truncate", "flip", "garbage", "stype", "huge"]))
        if action == "truncate":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif action == "flip":
            position = draw(st.integers(0, len(data) - 1))
            data = data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1 :]
        elif action == "garbage":
            data = draw(st.binary(max_size=200))
        elif action == "stype":
            stype = draw(st.sampled_from(["torch.Tensor", "", "numpy"]))
        elif action == "huge":
            data = _huge_header()
        damaged |= action != "keep"
        records[key] = Array(dtype=array.dtype, shape=array.shape, stype=stype, data=data)
    group = draw(st.sampled_from(["1", "1", "1", "2", ""]))
    metadata = Metadata(run_id=1, message_id="", src_node_id=7, dst_node_id=0, reply_to_message_id="",
                        group_id=group, created_at=0.0, ttl=60.0, message_type=p.TRAIN)  # fmt: skip
    content = RecordDict({p.UPDATE: ArrayRecord(records), p.METRICS: MetricRecord(case.metrics)})
    return case, Message(content, metadata=metadata), damaged or group != "1"


def check_flower_reply(drawn: tuple[Round, Message, bool]) -> None:
    """A damaged reply is rejected or, when the damage left a valid array (a flipped value bit), checked
    like any other; an undamaged one for this round passes."""
    case, message, damaged = drawn
    try:
        check_update(case.expected, *read_reply(message, 1), MAX_NUM_EXAMPLES)
    except RejectedUpdate:
        assert damaged, "an undamaged reply was rejected"


# --- the sparse-state decoder (fedmef.wire.decode_state) --------------------------------------

_MODEL = masked_cnn(0.5)
_STATE = wire.encode_state(_MODEL)


@st.composite
def wire_states(draw) -> p.Arrays:
    """The model's own state with some entries dropped, replaced by junk or resized."""
    arrays = dict(_STATE)
    for key in draw(st.lists(st.sampled_from(sorted(_STATE)), max_size=4, unique=True)):
        action = draw(st.sampled_from(["drop", "junk", "resize", "bytes"]))
        if action == "drop":
            del arrays[key]
        elif action == "junk":
            arrays[key] = draw(junk_arrays)
        elif action == "resize":
            arrays[key] = np.resize(arrays[key], draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=300)))
        else:
            arrays[key] = draw(hnp.arrays(np.uint8, arrays[key].shape))
    return arrays


def check_decode_state(arrays: p.Arrays) -> None:
    try:
        wire.decode_state(masked_cnn(0.5), arrays)
    except DECODE_ERRORS:
        pass


# --- the plan decoder (fedmef.wire.decode_plan) -----------------------------------------------

_PLAN, _ = wire.encode_plan(LocalPlan(epochs=1, batch_size=4, lr=0.1, growth_counts={"conv1": 2}), 1)


@st.composite
def plans(draw) -> tuple[dict, p.Arrays]:
    scalars = dict(_PLAN)
    for key in draw(st.lists(st.sampled_from(sorted(_PLAN) + ["grow/l0", "readjust/l0"]), max_size=4, unique=True)):
        if draw(st.booleans()):
            scalars.pop(key, None)
        else:
            scalars[key] = draw(junk_values)
    scalars[p.EXTRUDE] = draw(st.sampled_from([scalars.get(p.EXTRUDE, 0.0), 1.0]))
    marked = draw(st.dictionaries(st.sampled_from(["x/l0", "x/conv1", "v/l0"]), st.one_of(junk_arrays, junk_values),
                                  max_size=2))  # fmt: skip
    return scalars, marked


def check_decode_plan(drawn: tuple[dict, p.Arrays]) -> None:
    try:
        wire.decode_plan(*drawn)
    except DECODE_ERRORS:
        pass


# --- the manifest parser (fedmef.manifest.Manifest.from_json) ---------------------------------


def _manifest() -> dict:
    values = TensorSpec("conv1.weight", "values", "float32", (3,), "conv1", (2, 1, 3, 3))
    tensors = [values, TensorSpec("conv1.positions", "positions", "int32", (3,), "conv1", (2, 1, 3, 3)),
               TensorSpec("x", "data", "float32", (4, 1, 8, 8)), TensorSpec("lr", "plan", "float32", ())]
    outputs = (TensorSpec("loss", "loss", "float32", ()), TensorSpec("next/conv1.weight", "update", "float32", (3,),
                                                                     of="conv1.weight"))
    graphs = {"step": Graph("step.onnx", tuple(t.name for t in tensors), outputs),
              "evaluate": Graph("step.onnx", ("conv1.weight", "x"), outputs[:1])}
    files = [FileEntry("step.onnx", "0" * 64, 10)]
    return Manifest("onnxruntime", 4, tensors, graphs, files).to_dict()  # fmt: skip


_MANIFEST = _manifest()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def _paths(document, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, document
    if not isinstance(document, dict | list):
        return
    for key, value in document.items() if isinstance(document, dict) else enumerate(document):
        yield from _paths(value, (*prefix, key))


@st.composite
def manifest_texts(draw) -> str:
    """A valid manifest with a few values replaced, dropped or added, or arbitrary text or JSON."""
    choice = draw(st.sampled_from(["mutated", "json", "text"]))
    if choice == "text":
        return draw(st.text(max_size=50))
    if choice == "json":
        return json.dumps(draw(json_values))
    document = json.loads(json.dumps(_MANIFEST))
    for _ in range(draw(st.integers(1, 3))):
        path, _value = draw(st.sampled_from(list(_paths(document))))
        if not path:
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return json.dumps(document)


def check_manifest_parser(text: str) -> None:
    try:
        Manifest.from_json(text)
    except ValueError:
        pass


# --- the run-config parser (fedmef.config.RunConfig.from_run_config) --------------------------

_KEYS = sorted(RunConfig().as_dict())


@st.composite
def run_configs(draw) -> dict:
    keys = st.one_of(st.sampled_from(_KEYS), st.text(max_size=8))
    words = st.sampled_from(["fedmef", "feddst", "torch", "ort", "cifar10", "nan", "inf", "1e999"])
    values = st.one_of(junk_values, words)
    return draw(st.dictionaries(keys, values, max_size=6))


def check_run_config_parser(run_config: dict) -> None:
    try:
        config = RunConfig.from_run_config(run_config)
    except ValueError:
        return
    assert all(not isinstance(v, float) or math.isfinite(v) for v in config.as_dict().values())


#: name -> (strategy, check): every property ``check(drawn)`` must hold for every drawn value
PROPERTIES = {
    "validator accepts honest replies": (honest_rounds(), check_honest_reply_accepted),
    "validator rejects corrupted replies": (corrupted_rounds(), check_corrupted_reply_rejected),
    "validator only rejects arbitrary replies": (arbitrary_replies(), check_validator_only_rejects),
    "read_reply on damaged .npy payloads": (flower_replies(), check_flower_reply),
    "wire.decode_state": (wire_states(), check_decode_state),
    "wire.decode_plan": (plans(), check_decode_plan),
    "Manifest.from_json": (manifest_texts(), check_manifest_parser),
    "RunConfig.from_run_config": (run_configs(), check_run_config_parser),
}
