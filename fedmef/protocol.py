"""What travels between server and clients, as plain numpy arrays (no Flower import here).

The server and every client (Python or Android) meet only through these keys:

============  ===========================================  =====================
key           array                                        direction
============  ===========================================  =====================
``v/<layer>`` active weight values in flat (C-order) order   both
``m/<layer>`` mask, ``np.packbits`` of the flat boolean mask server -> client
``d/<param>`` every other trainable parameter, dense         both
``x/<layer>`` flat indices of the weights marked for BaE     server -> client
``gi/<layer>`` flat indices of the top inactive gradients    client -> server
``gv/<layer>`` their magnitudes                              client -> server
============  ===========================================  =====================

The round's ``LocalPlan`` travels as scalars (a config record) plus the ``x/`` arrays; growth
counts as ``grow/<layer>`` scalars. Sparse encoding makes the payload ~ nnz floats + 1 bit per
weight down, nnz floats up.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedmef.models import prunable_layers
from fedmef.training import LocalPlan

Arrays = dict[str, np.ndarray]


def _dense_params(model: nn.Module) -> dict[str, nn.Parameter]:
    prunable = {f"{name}.weight" for name in prunable_layers(model)}
    return {name: p for name, p in model.named_parameters() if name not in prunable}


def encode_state(model: nn.Module, with_masks: bool = True) -> Arrays:
    """Model weights (and masks) in the sparse wire format."""
    arrays: Arrays = {}
    for name, layer in prunable_layers(model).items():
        mask = layer.mask.detach().flatten().bool().numpy()
        arrays[f"v/{name}"] = layer.weight.detach().flatten().numpy()[mask].astype(np.float32)
        if with_masks:
            arrays[f"m/{name}"] = np.packbits(mask)
    for name, param in _dense_params(model).items():
        arrays[f"d/{name}"] = param.detach().numpy().astype(np.float32)
    return arrays


def decode_state(model: nn.Module, arrays: Arrays) -> None:
    """Load weights (and masks, when present) from the wire format into ``model`` in place."""
    with torch.no_grad():
        for name, layer in prunable_layers(model).items():
            if f"m/{name}" in arrays:
                bits = np.unpackbits(arrays[f"m/{name}"], count=layer.mask.numel()).astype(bool)
                layer.mask.copy_(torch.from_numpy(bits).view_as(layer.mask).to(layer.mask.dtype))
            mask = layer.mask.flatten().bool()
            values = torch.from_numpy(np.asarray(arrays[f"v/{name}"], dtype=np.float32))
            if values.numel() != int(mask.sum()):
                raise ValueError(f"layer {name}: {values.numel()} values for {int(mask.sum())} active weights")
            flat = torch.zeros(layer.weight.numel())
            flat[mask] = values
            layer.weight.copy_(flat.view_as(layer.weight))
        for name, param in _dense_params(model).items():
            param.copy_(torch.from_numpy(np.asarray(arrays[f"d/{name}"], dtype=np.float32)).view_as(param))


def encode_indexed(prefix: str, per_layer: dict[str, torch.Tensor]) -> Arrays:
    return {f"{prefix}/{name}": idx.numpy().astype(np.int32) for name, idx in per_layer.items()}


def decode_indexed(prefix: str, arrays: Arrays) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {
        key[start:]: torch.from_numpy(arrays[key].astype(np.int64)) for key in arrays if key.startswith(prefix + "/")
    }


def encode_growth(signal: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Arrays:
    arrays = encode_indexed("gi", {name: idx for name, (idx, _) in signal.items()})
    arrays.update({f"gv/{name}": mags.detach().numpy().astype(np.float32) for name, (_, mags) in signal.items()})
    return arrays


def payload_bytes(arrays: Arrays) -> int:
    return int(sum(a.nbytes for a in arrays.values()))


_PLAN_SCALARS = (
    "epochs", "batch_size", "lr", "weight_decay", "lambda_step", "lambda_max", "penalty",
    "window_offset_rounds", "window_rounds", "base_lr", "seed",
)  # fmt: skip


def encode_plan(plan: LocalPlan) -> tuple[dict, Arrays]:
    """(scalars, arrays) of a plan: the config record and the marked-set arrays."""
    scalars = {key.replace("_", "-"): getattr(plan, key) for key in _PLAN_SCALARS}
    scalars.update({f"grow/{name}": int(count) for name, count in plan.growth_counts.items()})
    return scalars, encode_indexed("x", plan.marked)


def decode_plan(scalars: dict, arrays: Arrays) -> LocalPlan:
    values = {key: scalars[key.replace("_", "-")] for key in _PLAN_SCALARS}
    growth = {key[5:]: int(value) for key, value in scalars.items() if key.startswith("grow/")}
    return LocalPlan(**values, marked=decode_indexed("x", arrays), growth_counts=growth)
