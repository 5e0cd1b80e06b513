"""The run configuration: one frozen dataclass built from Flower's run config.

Keys are declared once, with defaults, in ``pyproject.toml`` under ``[tool.flwr.app.config]``
(kebab-case) and overridden with ``flwr run . --run-config "key=value ..."`` or a ``conf/*.toml``
overlay. ``RunConfig.from_run_config`` maps each kebab key to the field of the same name with
underscores, checks every value and fails fast with a message naming the key.

Methods and what they switch on:

=================  ======  =====================  ===========================  ==============
method             sparse  extrusion (BaE)        activation pruning (SAP)     prune/grow
=================  ======  =====================  ===========================  ==============
fedavg             no      no                     no                           —
feddst             yes     no                     no                           clients (FedDST)
server-dst         yes     no                     no                           server
fedmef             yes     yes                    yes (NSConv + top-k)         server
fedmef-no-bae      yes     no                     yes                          server
fedmef-no-sap      yes     yes                    no                           server
sap-no-scaling     yes     yes                    top-k on plain convs         server
=================  ======  =====================  ===========================  ==============

``feddst`` is FedDST as published (Bibikar et al., AAAI 2022): clients prune and regrow during
the round, the server votes and re-prunes (``fedmef/feddst.py``). It runs on the eager ``torch``
backend only: the exported step graphs keep each instruction's mask, and the contract has clients
change no mask. ``server-dst`` is FedMef's server-side prune/grow with BaE, SAP and NSConv off
(an ablation, not FedDST).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Method:
    sparse: bool
    extrusion: bool
    activation_pruning: bool
    scaled: bool
    local_dst: bool = False  # FedDST: clients prune/regrow, the server votes and re-prunes


METHODS = {
    "fedavg": Method(sparse=False, extrusion=False, activation_pruning=False, scaled=False),
    "feddst": Method(sparse=True, extrusion=False, activation_pruning=False, scaled=False, local_dst=True),
    "server-dst": Method(sparse=True, extrusion=False, activation_pruning=False, scaled=False),
    "fedmef": Method(sparse=True, extrusion=True, activation_pruning=True, scaled=True),
    "fedmef-no-bae": Method(sparse=True, extrusion=False, activation_pruning=True, scaled=True),
    "fedmef-no-sap": Method(sparse=True, extrusion=True, activation_pruning=False, scaled=False),
    "sap-no-scaling": Method(sparse=True, extrusion=True, activation_pruning=True, scaled=False),
}
DATASETS = ("digits", "cifar10")
PARTITIONS = ("dirichlet", "iid")
BACKENDS = ("torch", "ort", "executorch", "ort-training")
#: the runtime (manifest name) each exported-artifact backend executes; ort-training: ONNX Runtime's
#: standard training artifacts, run in their own venv (docs/ort-training.md)
BACKEND_RUNTIMES = {"ort": "onnxruntime", "executorch": "executorch", "ort-training": "onnxruntime-training"}
MODELS = ("cnn", "resnet18", "mobilenetv2")
#: seeds stay below 2^63 (the batch order's SplitMix64) after the schedule's per-round offsets
MAX_SEED = 2**40
RUN_NAME = re.compile(r"[A-Za-z0-9._-]*")


@dataclass(frozen=True)
class RunConfig:
    method: str = "fedmef"
    model: str = "cnn"
    model_width: float = 0.0  # 0: the model's default width
    dataset: str = "digits"
    data_path: str = ""
    partition: str = "dirichlet"
    dirichlet_alpha: float = 0.5
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    num_rounds: int = 40
    clients_per_round: int = 10
    local_epochs: int = 2
    batch_size: int = 32
    lr: float = 0.05
    lr_final: float = 0.005
    weight_decay: float = 1e-4
    density: float = 0.1
    adjust_interval: int = 10
    adjust_end_fraction: float = 0.6
    adjust_alpha: float = 0.3
    extrusion_rounds: int = 2
    bae_lambda_max: float = 0.3
    bae_ramp: float = 1.0
    bae_penalty: str = "squared"
    sap_drop: float = 0.7
    sap_encoding: str = "int32"
    sap_fuse_relu: bool = True
    backend: str = "ort"
    output_dir: str = "runs"
    run_name: str = ""  # the run directory under output-dir; "" = <timestamp>-<method>
    resume: bool = False  # continue run-name from its last checkpointed round (server/checkpoint.py)
    round_timeout: float = 600.0
    min_replies: int = 1  # fewer valid replies in a round: the previous model is kept
    reject_norm_mads: float = 20.0  # server/validation.py: 0 switches the update-norm check off
    max_num_examples: int = 1_000_000
    fault_fraction: float = 0.0  # server/faults.py: share of each round's clients whose replies are spoiled (tests)

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> RunConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in run_config.items():
            name = key.replace("-", "_") if isinstance(key, str) else key
            if name not in fields:
                raise ValueError(f"unknown run-config key {key!r}")
            default = fields[name].default
            try:
                # int(2.5) == 2 and int(True) == 1 would otherwise pass silently
                fractional = type(default) is int and isinstance(value, float) and not value.is_integer()
                if (isinstance(value, bool) != isinstance(default, bool)) or fractional:
                    raise TypeError
                values[name] = type(default)(value)
            except (TypeError, ValueError):
                raise ValueError(f"run-config {key!r} must be a {type(default).__name__}, got {value!r}") from None
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        checks = [
            (self.method in METHODS, "method", f"one of {sorted(METHODS)}"),
            (self.model in MODELS, "model", f"one of {list(MODELS)}"),
            (self.dataset in DATASETS, "dataset", f"one of {list(DATASETS)}"),
            (self.partition in PARTITIONS, "partition", f"one of {list(PARTITIONS)}"),
            (self.backend in BACKENDS, "backend", f"one of {list(BACKENDS)}"),
            (self.bae_penalty in ("squared", "norm"), "bae-penalty", "'squared' or 'norm'"),
            (self.sap_encoding in ("int32", "bits"), "sap-encoding", "'int32' or 'bits'"),
            (0.0 < self.density <= 1.0, "density", "in (0, 1]"),
            (0.0 <= self.sap_drop < 1.0, "sap-drop", "in [0, 1)"),
            (self.num_rounds > 0, "num-rounds", "a positive integer"),
            (self.clients_per_round > 0, "clients-per-round", "a positive integer"),
            (self.local_epochs > 0, "local-epochs", "a positive integer"),
            (self.batch_size > 0, "batch-size", "a positive integer"),
            (self.adjust_interval > 0, "adjust-interval", "a positive integer"),
            (0.0 < self.adjust_end_fraction <= 1.0, "adjust-end-fraction", "in (0, 1]"),
            (0.0 <= self.adjust_alpha < 1.0, "adjust-alpha", "in [0, 1)"),
            (1 <= self.extrusion_rounds <= self.adjust_interval, "extrusion-rounds", "in 1..adjust-interval"),
            (self.dirichlet_alpha > 0, "dirichlet-alpha", "positive"),
            (0.0 <= self.validation_fraction < 1.0, "validation-fraction", "in [0, 1)"),
            (0.0 < self.test_fraction < 1.0, "test-fraction", "in (0, 1)"),
            (self.lr > 0, "lr", "positive"),
            (self.lr_final > 0, "lr-final", "positive"),
            (self.weight_decay >= 0, "weight-decay", "non-negative"),
            (self.bae_lambda_max >= 0, "bae-lambda-max", "non-negative"),
            (0.0 < self.bae_ramp <= 1.0, "bae-ramp", "in (0, 1]"),
            (self.round_timeout > 0, "round-timeout", "positive seconds"),
            (1 <= self.min_replies <= self.clients_per_round, "min-replies", "in 1..clients-per-round"),
            (self.run_name not in (".", "..") and RUN_NAME.fullmatch(self.run_name), "run-name",
             "a directory name of letters, digits, '.', '_' and '-' (or empty)"),  # fmt: skip
            (bool(self.run_name) or not self.resume, "run-name", "set when resume = true (the run to continue)"),
            (self.model_width >= 0, "model-width", "non-negative (0 = default)"),
            (0 <= self.seed < MAX_SEED, "seed", f"in [0, {MAX_SEED})"),
            (self.reject_norm_mads >= 0, "reject-norm-mads", "non-negative (0 = no norm check)"),
            (self.max_num_examples > 0, "max-num-examples", "a positive integer"),
            (0.0 <= self.fault_fraction <= 1.0, "fault-fraction", "in [0, 1] (0 = no injected faults)"),
            (self.dataset != "cifar10" or bool(self.data_path), "data-path", "set for cifar10 (a local directory)"),
        ]
        for field in dataclasses.fields(self):  # NaN passes no check below, but inf passes some
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                key = field.name.replace("_", "-")
                raise ValueError(f"invalid run-config {key}: expected a finite number; got {value!r}")
        for ok, key, expected in checks:
            if not ok:
                raise ValueError(f"invalid run-config {key}: expected {expected}; got {self._value(key)!r}")
        if self.flags.local_dst and self.backend != "torch":
            raise ValueError(
                f"invalid run-config backend: method {self.method!r} prunes and regrows on the clients during the "
                f"round, which the exported step graphs (backend {self.backend!r}) do not do; set backend=\"torch\""
            )

    def _value(self, key: str) -> Any:
        return getattr(self, key.replace("-", "_"), None)

    @property
    def flags(self) -> Method:
        return METHODS[self.method]

    @property
    def adjust_end_round(self) -> int:
        return max(1, int(self.adjust_end_fraction * self.num_rounds + 1e-9))

    @property
    def sap_keep(self) -> float:
        return 1.0 - self.sap_drop if self.flags.activation_pruning else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)}
