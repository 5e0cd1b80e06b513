"""RunConfig: defaults, fail-fast validation naming the key, method flags, and pyproject agreement."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from fedmef.config import METHODS, RunConfig

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_defaults_are_valid():
    config = RunConfig()
    config.validate()
    assert RunConfig.from_run_config({}) == config


def test_pyproject_declares_exactly_the_fields_with_equal_defaults():
    declared = tomllib.loads(PYPROJECT.read_text())["tool"]["flwr"]["app"]["config"]
    fields = {f.name.replace("_", "-"): f.default for f in dataclasses.fields(RunConfig)}
    assert set(declared) == set(fields)
    for key, value in declared.items():
        assert value == fields[key], key
        assert type(value) is type(fields[key]), key
    assert RunConfig.from_run_config(declared) == RunConfig()


def test_kebab_keys_map_to_fields_and_values_are_converted():
    config = RunConfig.from_run_config(
        {"num-rounds": 7, "lr": 1, "sap-drop": 0.5, "adjust-interval": 3.0, "method": "server-dst", "model-width": 8}
    )
    assert config.num_rounds == 7
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.adjust_interval == 3 and isinstance(config.adjust_interval, int)
    assert config.model_width == 8.0 and isinstance(config.model_width, float)
    assert (config.sap_drop, config.method) == (0.5, "server-dst")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"density": 0.0}, "density"),
        ({"density": 1.5}, "density"),
        ({"method": "fedprox"}, "method"),
        ({"num-rounds": 0}, "num-rounds"),
        ({"num-rounds": -5}, "num-rounds"),
        ({"model": "vgg"}, "model"),
        ({"dataset": "mnist"}, "dataset"),
        ({"partition": "shards"}, "partition"),
        ({"backend": "tflite"}, "backend"),
        ({"bae-penalty": "l1"}, "bae-penalty"),
        ({"sap-drop": 1.0}, "sap-drop"),
        ({"adjust-end-fraction": 0.0}, "adjust-end-fraction"),
        ({"adjust-alpha": 1.0}, "adjust-alpha"),
        ({"extrusion-rounds": 0}, "extrusion-rounds"),
        ({"lr": 0.0}, "lr"),
        ({"lr-final": -1.0}, "lr-final"),
        ({"bae-lambda-max": -0.1}, "bae-lambda-max"),
        ({"bae-ramp": 0.0}, "bae-ramp"),
        ({"bae-ramp": 1.5}, "bae-ramp"),
        ({"validation-fraction": 1.0}, "validation-fraction"),
        ({"test-fraction": 0.0}, "test-fraction"),
        ({"batch-size": 0}, "batch-size"),
        ({"round-timeout": 0.0}, "round-timeout"),
        ({"model-width": -1.0}, "model-width"),
        ({"dataset": "cifar10"}, "data-path"),
        ({"reject-norm-mads": -1.0}, "reject-norm-mads"),
        ({"max-num-examples": 0}, "max-num-examples"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"lr": float("inf")}, "lr"),
        ({"round-timeout": float("nan")}, "round-timeout"),
    ],
)
def test_invalid_values_fail_naming_the_key_and_value(overrides, key):
    with pytest.raises(ValueError, match=f"invalid run-config {key}: expected") as error:
        RunConfig.from_run_config(overrides)
    if key != "data-path":
        assert repr(next(iter(overrides.values()))) in str(error.value)


def test_unknown_key_fails():
    with pytest.raises(ValueError, match="unknown run-config key 'num_round'"):
        RunConfig.from_run_config({"num_round": 3})
    with pytest.raises(ValueError, match="unknown run-config key 3"):
        RunConfig.from_run_config({3: 3})


@pytest.mark.parametrize(
    ("key", "value", "type_name"),
    [("num-rounds", "many", "int"), ("num-rounds", 2.5, "int"), ("lr", "fast", "float"), ("seed", True, "int")],
)
def test_wrong_type_fails_naming_the_key(key, value, type_name):
    with pytest.raises(ValueError, match=f"run-config '{key}' must be a {type_name}, got {value!r}"):
        RunConfig.from_run_config({key: value})


@pytest.mark.parametrize(
    ("method", "sparse", "extrusion", "activation_pruning", "scaled", "keep", "local_dst"),
    [
        ("fedavg", False, False, False, False, 1.0, False),
        ("feddst", True, False, False, False, 1.0, True),
        ("server-dst", True, False, False, False, 1.0, False),
        ("fedmef", True, True, True, True, 0.3, False),
        ("fedmef-no-bae", True, False, True, True, 0.3, False),
        ("fedmef-no-sap", True, True, False, False, 1.0, False),
        ("sap-no-scaling", True, True, True, False, 0.3, False),
    ],
)
def test_method_flags_follow_the_table(method, sparse, extrusion, activation_pruning, scaled, keep, local_dst):
    config = RunConfig.from_run_config({"method": method, "backend": "torch"})
    assert (config.flags.sparse, config.flags.extrusion) == (sparse, extrusion)
    assert (config.flags.activation_pruning, config.flags.scaled) == (activation_pruning, scaled)
    assert config.flags.local_dst == local_dst
    assert config.sap_keep == pytest.approx(keep)  # 1 - sap-drop (0.7) when SAP is on


def test_every_method_is_covered():
    assert set(METHODS) == {"fedavg", "feddst", "server-dst", "fedmef", "fedmef-no-bae", "fedmef-no-sap",
                            "sap-no-scaling"}  # fmt: skip


@pytest.mark.parametrize("backend", ["ort", "executorch"])
def test_feddst_runs_on_the_torch_backend_only_and_says_why(backend):
    with pytest.raises(ValueError, match="invalid run-config backend: method 'feddst' prunes and regrows on the "
                                         "clients.*set backend=\"torch\""):  # fmt: skip
        RunConfig.from_run_config({"method": "feddst", "backend": backend})
    assert RunConfig.from_run_config({"method": "feddst", "backend": "torch"}).flags.local_dst


def test_adjust_end_round():
    assert RunConfig(num_rounds=40, adjust_end_fraction=0.6).adjust_end_round == 24
    assert RunConfig(num_rounds=3, adjust_end_fraction=0.1).adjust_end_round == 1  # never below 1


def test_as_dict_round_trips():
    config = RunConfig.from_run_config(
        {"method": "fedmef-no-sap", "dataset": "cifar10", "data-path": "/data/cifar", "num-rounds": 12, "lr": 0.2}
    )
    as_dict = config.as_dict()
    assert as_dict["data-path"] == "/data/cifar" and as_dict["num-rounds"] == 12
    assert all("_" not in key for key in as_dict)
    assert RunConfig.from_run_config(as_dict) == config


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().lr = 1.0
