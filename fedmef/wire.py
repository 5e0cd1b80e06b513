"""An eager model and a ``LocalPlan`` in the wire format of ``protocol`` (server and eager client).

``encode_state`` / ``decode_state`` convert between a model's weights and masks and the ``v/``,
``m/``, ``d/`` arrays; ``encode_plan`` / ``decode_plan`` between a ``LocalPlan`` and the ``plan``
record's scalars plus the ``x/`` marked sets; ``encode_growth`` writes ``gi/``/``gv/``. Sparse
encoding makes the payload ~ nnz floats + 1 bit per weight down, nnz floats up (a FedDST client's
readjusted reply also carries its new masks ``m/``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn

from fedmef import protocol as p
from fedmef.models import prunable_layers, set_masks
from fedmef.training import LocalPlan


def _dense_params(model: nn.Module) -> dict[str, nn.Parameter]:
    prunable = {f"{name}.weight" for name in prunable_layers(model)}
    return {name: param for name, param in model.named_parameters() if name not in prunable}


def encode_state(model: nn.Module, with_masks: bool = True) -> p.Arrays:
    """Model weights (and masks) in the sparse wire format."""
    arrays: p.Arrays = {}
    for name, layer in prunable_layers(model).items():
        mask = layer.mask.detach().flatten().bool().numpy()
        arrays[p.VALUES + name] = layer.weight.detach().flatten().numpy()[mask].astype(np.float32)
        if with_masks:
            arrays[p.MASK + name] = p.mask_bits(mask)
    for name, param in _dense_params(model).items():
        arrays[p.DENSE + name] = param.detach().numpy().astype(np.float32)
    return arrays


def decode_state(model: nn.Module, arrays: p.Arrays) -> None:
    """Load weights (and masks, when present) from the wire format into ``model`` in place.

    Raises ``KeyError`` for a missing array and ``ValueError`` for a malformed one."""
    layers = prunable_layers(model)
    masks = {}
    for name, layer in layers.items():
        if p.MASK + name in arrays:
            positions = p.active_positions(_array(arrays, p.MASK + name, np.uint8), layer.mask.numel())
            masks[name] = torch.zeros(layer.mask.numel()).index_fill_(0, torch.from_numpy(positions).long(), 1.0)
    set_masks(model, masks)
    with torch.no_grad():
        for name, layer in layers.items():
            active = layer.mask.flatten().bool()
            values = torch.from_numpy(_array(arrays, p.VALUES + name, np.float32).reshape(-1))
            if values.numel() != int(active.sum()):
                raise ValueError(f"layer {name}: {values.numel()} values for {int(active.sum())} active weights")
            flat = torch.zeros(layer.weight.numel())
            flat[active] = values
            layer.weight.copy_(flat.view_as(layer.weight))
        for name, param in _dense_params(model).items():
            values = _array(arrays, p.DENSE + name, np.float32)
            if values.size != param.numel():
                raise ValueError(f"{p.DENSE + name}: {values.size} values for a parameter of shape {list(param.shape)}")
            param.copy_(torch.from_numpy(values).view_as(param))


def _array(arrays: p.Arrays, key: str, dtype) -> np.ndarray:
    """``arrays[key]`` converted to ``dtype``; ``ValueError`` naming the key when it is not real numbers."""
    value = np.asarray(arrays[key])
    if value.dtype.kind not in "biuf":  # complex, strings, objects, dates
        raise ValueError(f"{key}: dtype {value.dtype} is not real numbers")
    return np.ascontiguousarray(value, dtype=dtype)


def encode_growth(signal: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> p.Arrays:
    arrays = {}
    for name, (indices, magnitudes) in signal.items():
        arrays[p.GROWTH_INDICES + name] = indices.numpy().astype(np.int32)
        arrays[p.GROWTH_MAGNITUDES + name] = magnitudes.detach().numpy().astype(np.float32)
    return arrays


#: plan record key -> LocalPlan field
_PLAN_FIELDS = {
    p.EPOCHS: "epochs", p.BATCH_SIZE: "batch_size", p.SEED: "seed", p.LR: "lr", p.BASE_LR: "base_lr",
    p.LAMBDA_MAX: "lambda_max", p.LAMBDA_RAMP: "lambda_ramp", p.WINDOW_OFFSET: "window_offset_rounds",
    p.WINDOW_ROUNDS: "window_rounds", p.WEIGHT_DECAY: "weight_decay", p.PENALTY: "penalty",
}  # fmt: skip
_FLOAT_KEYS = (p.WINDOW_OFFSET, p.WINDOW_ROUNDS)  # graph scalars travel as floats


def encode_plan(plan: LocalPlan, round_num: int) -> tuple[dict, p.Arrays]:
    """(scalars, arrays) of a plan: the ``plan`` record and the ``x/`` marked-set arrays."""
    scalars = {key: getattr(plan, name) for key, name in _PLAN_FIELDS.items()}
    scalars.update({key: float(scalars[key]) for key in _FLOAT_KEYS})
    scalars[p.ROUND] = round_num
    scalars[p.EXTRUDE] = 1.0 if plan.marked else 0.0
    scalars.update({p.GROW + name: int(count) for name, count in plan.growth_counts.items()})
    scalars.update({p.READJUST + name: int(count) for name, count in plan.readjust_counts.items()})
    marked = {p.MARKED + name: idx.numpy().astype(np.int32) for name, idx in plan.marked.items()}
    return scalars, marked


def decode_plan(scalars: dict, arrays: p.Arrays) -> LocalPlan:
    """The ``LocalPlan`` of a plan record and its ``x/`` arrays: ``KeyError`` for a missing key,
    ``ValueError`` for a value of the wrong type (§3: counts and seeds are ints, coefficients numbers)."""
    values = {name: _scalar(key, scalars[key]) for key, name in _PLAN_FIELDS.items()}
    values.update({name: _whole(key, values[name]) for key, name in _PLAN_FIELDS.items() if key in _WHOLE_KEYS})
    marked = {}
    if _scalar(p.EXTRUDE, scalars[p.EXTRUDE]):
        marked = {name: torch.from_numpy(_indices(p.MARKED + name, indices))
                  for name, indices in p.with_prefix(p.MARKED, arrays).items()}  # fmt: skip
    growth = {name: _whole(p.GROW + name, count) for name, count in p.with_prefix(p.GROW, scalars).items()}
    readjust = {name: _whole(p.READJUST + name, count) for name, count in p.with_prefix(p.READJUST, scalars).items()}
    return LocalPlan(**values, marked=marked, growth_counts=growth, readjust_counts=readjust)


_WHOLE_KEYS = (p.EPOCHS, p.BATCH_SIZE, p.SEED, p.WINDOW_OFFSET, p.WINDOW_ROUNDS)


def _scalar(key: str, value):
    """A plan value as sent: a finite number, or the penalty's name."""
    if key == p.PENALTY:
        if not isinstance(value, str):
            raise ValueError(f"plan {key!r} must be a string, got {value!r}")
        return value
    finite = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and math.isfinite(value))
    if isinstance(value, bool) or not finite:
        raise ValueError(f"plan {key!r} must be a finite number, got {value!r}")
    return value


def _whole(key: str, value) -> int:
    if _scalar(key, value) != int(value):
        raise ValueError(f"plan {key!r} must be a whole number, got {value!r}")
    return int(value)


def _indices(key: str, value) -> np.ndarray:
    indices = np.asarray(value)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError(f"{key} must be a 1-d integer array, got {indices.dtype} of shape {indices.shape}")
    return indices.astype(np.int64)
