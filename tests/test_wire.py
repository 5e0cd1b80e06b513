"""An eager model and a plan in the wire format: sparse state, plans and growth signals as arrays."""

import numpy as np
import pytest
import torch

from fedmef.models import prunable_layers, set_masks
from fedmef.protocol import payload_bytes
from fedmef.training import LocalPlan
from fedmef.wire import decode_plan, decode_state, encode_growth, encode_plan, encode_state

from .model_support import masked_cnn as shared_masked_cnn


def masked_cnn(seed: int, scaled: bool = True):
    return shared_masked_cnn(0.2, scaled=scaled, seed=seed)


def test_encode_state_is_sparse():
    model = masked_cnn(0)
    arrays = encode_state(model)
    layers = prunable_layers(model)
    assert sorted(k for k in arrays if k.startswith("v/")) == [f"v/{n}" for n in sorted(layers)]
    for name, layer in layers.items():
        mask = layer.mask.flatten().bool()
        assert arrays[f"v/{name}"].dtype == np.float32
        assert arrays[f"v/{name}"].shape == (int(mask.sum()),)
        assert np.array_equal(arrays[f"v/{name}"], layer.weight.detach().flatten()[mask].numpy())
        assert np.array_equal(arrays[f"m/{name}"], np.packbits(mask.numpy()))
        assert arrays[f"m/{name}"].nbytes == -(-layer.weight.numel() // 8)  # one bit per weight
    # everything else dense: biases and the NSConv gains, never the prunable weights
    assert sorted(k for k in arrays if k.startswith("d/")) == sorted(
        [f"d/{n}.bias" for n in layers] + [f"d/conv{i}.gain" for i in (1, 2, 3)]
    )
    nnz = sum(int(layer.mask.sum()) for layer in layers.values())
    assert payload_bytes({k: v for k, v in arrays.items() if k.startswith("v/")}) == 4 * nnz


def test_state_round_trip_restores_weights_and_masks_exactly():
    source, target = masked_cnn(0), masked_cnn(1)
    decode_state(target, encode_state(source))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_decode_without_masks_keeps_the_receivers_masks():
    source = masked_cnn(0)
    target = masked_cnn(1)
    set_masks(target, {name: layer.mask for name, layer in prunable_layers(source).items()})
    decode_state(target, encode_state(source, with_masks=False))
    assert not any(key.startswith("m/") for key in encode_state(source, with_masks=False))
    assert all(
        torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True)
    )


def test_decode_with_wrong_value_count_raises():
    model = masked_cnn(0)
    arrays = encode_state(model, with_masks=False)
    arrays["v/fc"] = arrays["v/fc"][:-1]
    with pytest.raises(ValueError, match="layer fc: .* values for .* active weights"):
        decode_state(masked_cnn(0), arrays)


def test_plan_round_trip():
    plan = LocalPlan(
        epochs=3, batch_size=16, lr=0.02, weight_decay=1e-4,
        marked={"conv1": torch.tensor([5, 1]), "fc": torch.tensor([300])},
        lambda_max=0.05, lambda_ramp=0.25, penalty="norm", window_offset_rounds=1, window_rounds=2,
        base_lr=0.05, growth_counts={"conv1": 2, "fc": 7}, seed=42,
    )  # fmt: skip
    scalars, arrays = encode_plan(plan, 7)
    assert scalars["batch-size"] == 16 and scalars["window-offset"] == 1.0 and scalars["penalty"] == "norm"
    assert scalars["lambda-max"] == 0.05 and scalars["lambda-ramp"] == 0.25 and "lambda-step" not in scalars
    assert scalars["round"] == 7 and scalars["extrude"] == 1.0 and scalars["base-lr"] == 0.05
    assert scalars["grow/conv1"] == 2 and scalars["grow/fc"] == 7
    assert set(arrays) == {"x/conv1", "x/fc"} and arrays["x/conv1"].dtype == np.int32
    decoded = decode_plan(scalars, arrays)
    for field in ("epochs", "batch_size", "lr", "weight_decay", "lambda_max", "lambda_ramp", "penalty",
                  "window_offset_rounds", "window_rounds", "base_lr", "seed"):  # fmt: skip
        assert getattr(decoded, field) == getattr(plan, field), field
    assert decoded.growth_counts == {"conv1": 2, "fc": 7}
    assert list(decoded.marked) == ["conv1", "fc"]
    assert decoded.marked["conv1"].tolist() == [5, 1] and decoded.marked["fc"].tolist() == [300]


def test_plan_without_extrusion_or_adjustment():
    scalars, arrays = encode_plan(LocalPlan(epochs=1, batch_size=8, lr=0.1), 1)
    assert arrays == {} and not any(key.startswith("grow/") for key in scalars) and scalars["extrude"] == 0.0
    decoded = decode_plan(scalars, arrays)
    assert decoded.marked == {} and decoded.growth_counts == {} and decoded.readjust_counts == {}


def test_feddst_readjust_counts_round_trip():
    scalars, _ = encode_plan(LocalPlan(epochs=1, batch_size=8, lr=0.1, readjust_counts={"conv2": 3, "fc": 0}), 10)
    assert scalars["readjust/conv2"] == 3 and scalars["readjust/fc"] == 0
    assert not any(key.startswith("grow/") for key in scalars)
    assert decode_plan(scalars, {}).readjust_counts == {"conv2": 3, "fc": 0}


def test_encode_growth():
    signal = {
        "conv1": (torch.tensor([7, 2]), torch.tensor([0.5, 0.25])),
        "fc": (torch.tensor([0]), torch.tensor([3.0])),
    }
    arrays = encode_growth(signal)
    assert set(arrays) == {"gi/conv1", "gv/conv1", "gi/fc", "gv/fc"}
    assert arrays["gi/conv1"].dtype == np.int32 and arrays["gi/conv1"].tolist() == [7, 2]
    assert arrays["gv/conv1"].dtype == np.float32 and arrays["gv/conv1"].tolist() == [0.5, 0.25]
    assert payload_bytes(arrays) == 4 * 3 + 4 * 3
