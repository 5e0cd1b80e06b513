"""The contract's numpy side: mask bits, the SplitMix64 batch order, packing feeds by role."""

import json

import numpy as np
import pytest

from fedmef import protocol as p
from fedmef.manifest import Manifest

from .vector_support import ARTIFACTS, ROUND, VECTORS, load_round, read_arrays


def test_splitmix64_reference_outputs():
    # Vigna's splitmix64.c with seed 1234567: the first outputs of the published reference
    rng = p.SplitMix64(1234567)
    assert [rng.next() for _ in range(3)] == [6457827717110365317, 3203168211198807973, 9817491932198370423]


def test_batches_are_fixed_size_drop_last_and_cover_each_epoch_once():
    batches = p.batches(10, 4, epochs=2, seed=0)
    assert [len(b) for b in batches] == [4, 4, 4, 4]  # 2 per epoch, the 2 left over dropped
    for epoch in (batches[:2], batches[2:]):
        seen = np.concatenate(epoch)
        assert len(set(seen.tolist())) == 8 and seen.min() >= 0 and seen.max() < 10
    assert not np.array_equal(np.concatenate(batches[:2]), np.concatenate(batches[2:])), "a new order per epoch"


def test_batches_wrap_around_when_fewer_samples_than_a_batch():
    batches = p.batches(3, 5, epochs=2, seed=1)
    assert len(batches) == 2  # one full batch per epoch
    for batch in batches:
        assert sorted(batch[:3].tolist()) == [0, 1, 2] and batch[3:].tolist() == batch[:2].tolist()


def test_fisher_yates_by_hand():
    rng = p.SplitMix64(5)
    draws = [rng.next() for _ in range(3)]
    order = [0, 1, 2, 3]
    for i, r in zip((3, 2, 1), draws, strict=True):
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    assert p.batches(4, 4, 1, 5)[0].tolist() == order


@pytest.mark.parametrize("args", [(0, 4, 1, 0), (4, 0, 1, 0), (4, 2, 0, 0), (4, 2, 1, -1), (4, 2, 1, 1 << 63)])
def test_bad_batch_arguments_raise(args):
    with pytest.raises(ValueError):
        p.batches(*args)


def test_shuffle_vectors():
    vectors = json.loads((VECTORS / "shuffle.json").read_text())
    for case in vectors["splitmix64"]:
        rng = p.SplitMix64(case["seed"])
        assert [str(rng.next()) for _ in case["outputs"]] == case["outputs"]
    for case in vectors["batches"]:
        got = p.batches(case["n"], case["batch_size"], case["epochs"], case["seed"])
        assert [b.tolist() for b in got] == case["batches"]


def test_mask_bits_vectors_and_bit_order():
    assert p.mask_bits(np.array([1, 0, 0, 0, 0, 0, 0, 0, 1], bool)).tolist() == [128, 128]  # first = MSB
    for case in json.loads((VECTORS / "maskbits.json").read_text()):
        mask = np.array(case["mask"], bool).reshape(case["shape"])
        assert p.mask_bits(mask).tolist() == case["bits"]
        assert p.active_positions(np.array(case["bits"], np.uint8), mask.size).tolist() == case["positions"]


def test_active_positions_rejects_a_wrong_byte_count():
    with pytest.raises(ValueError, match="3 bytes, 9 weights need 2"):
        p.active_positions(np.zeros(3, np.uint8), 9)


def test_pack_state_matches_the_vector_inputs_and_unpack_inverts_it():
    state, _, _ = load_round()
    manifest = Manifest.load(ARTIFACTS)
    packed = p.pack_state(manifest, "step", state)
    expected = read_arrays(ROUND / "inputs")
    assert sorted(packed) == sorted(expected)
    for name, value in expected.items():
        assert packed[name].dtype == value.dtype and np.array_equal(packed[name], value), name
    update = p.unpack(manifest, "step", packed)
    assert sorted(update) == sorted(k for k in state if k.startswith(("v/", "d/")))
    for key, value in update.items():
        assert np.array_equal(value, state[key]), key


def test_marked_vector_is_one_exactly_at_marked_positions():
    state, _, _ = load_round()
    manifest = Manifest.load(ARTIFACTS)
    packed = p.pack_state(manifest, "step", state)
    for spec in manifest.tensors:
        if spec.role == "marked":
            positions = packed[f"{spec.layer}.positions"]
            marked = set(state.get(p.MARKED + spec.layer, np.empty(0)).tolist())
            assert packed[spec.name].tolist() == [float(int(i) in marked) for i in positions]


def test_pack_errors_name_the_problem():
    state, plan, data = load_round()
    manifest = Manifest.load(ARTIFACTS)
    with pytest.raises(KeyError, match="no 'v/conv2'"):
        p.pack_state(manifest, "step", {k: v for k, v in state.items() if k != "v/conv2"})
    with pytest.raises(ValueError, match="input .conv2.weight.: shape"):
        p.pack_state(manifest, "step", state | {"v/conv2": state["v/conv2"][:-1]})
    with pytest.raises(ValueError, match="marked indices of conv2 outside"):
        p.pack_state(manifest, "step", state | {"x/conv2": np.array([10**6], np.int32)})
    with pytest.raises(KeyError, match="no value for graph input 'lr'"):
        p.pack(manifest, "step", state, {p.X: data.train.x[:8], p.Y: data.train.y[:8]})
    with pytest.raises(ValueError, match="input 'x': shape"):
        p.pack(manifest, "evaluate", state, {p.X: data.train.x[:3], p.Y: data.train.y[:8]})
