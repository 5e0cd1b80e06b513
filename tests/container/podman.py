"""Podman and buildah as the container test drives them: root, no Docker daemon, no base-image registry.

Everything lives under one work directory (its own ``containers.conf``, vfs storage, run root and
libpod tmp directory), so the test never touches a user's images or another run's, and ``reset()``
removes all it made. What this machine kind needs (docs/deployment.md, "Testing the image"): the
``runc`` runtime, vfs storage, lowered ulimits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

STANDIN_BASE = "localhost/fedmef-python-standin:3.11-slim"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


class Podman:
    def __init__(self, work: Path):
        self.work = work
        conf = work / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            f'[engine]\nruntime = "runc"\ntmp_dir = "{work / "tmp"}"\n'
        )
        (conf / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{work / "run"}"\ngraphroot = "{work / "storage"}"\n'
        )
        self.env = os.environ | {
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
        }

    def run(self, *args: str, tool: str = "podman", timeout: float = 300, check: bool = True, **kwargs):
        """``podman ARGS`` (or ``buildah``); a failure raises with the tool's own output."""
        result = subprocess.run([tool, *args], env=self.env, capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stdout[-4000:]}"
                               f"\n{result.stderr[-4000:]}")  # fmt: skip
        return result

    def __call__(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.strip()

    def import_standin_base(self) -> str:
        """A stand-in for ``python:3.11-slim`` (no registry here): Debian bookworm's Python 3.11 from
        debootstrap, patched to behave like the official image (pip may install, ``python`` exists)."""
        rootfs = self.work / "rootfs"
        try:
            subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv",
                            "bookworm", str(rootfs)], check=True, capture_output=True, timeout=1800)  # fmt: skip
            (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink()  # else PEP 668 refuses `pip install`
            (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
            (rootfs / "usr/local/bin/pip").symlink_to("/usr/bin/pip3")
            for cache in ["var/cache/apt/archives", "var/lib/apt/lists"]:
                shutil.rmtree(rootfs / cache)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            self.run("import", "--change", "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]', "-", STANDIN_BASE,
                     stdin=tar.stdout, timeout=600)  # fmt: skip
            tar.wait(timeout=60)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        return STANDIN_BASE

    def build(self, context: Path, tag: str, target: str, build_args: dict[str, str]) -> None:
        """One working container and one commit (``--layers=false``: vfs copies the whole root file
        system per layer); docker format keeps the HEALTHCHECK. pip trusts this machine's CA through a
        build-time mount only: nothing of this machine ends up in the image."""
        pip_conf = self.work / "pip.conf"
        pip_conf.write_text("[global]\ncert = /etc/ssl/certs/host-ca.crt\nretries = 3\ntimeout = 180\n")
        args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
        self.run("bud", "--layers=false", "--format=docker", "--pull=never", f"--target={target}", *args,
                 f"--volume={HOST_CA}:/etc/ssl/certs/host-ca.crt:ro", f"--volume={pip_conf}:/etc/pip.conf:ro",
                 f"--tag={tag}", str(context), tool="buildah", timeout=3600)  # fmt: skip

    def reset(self) -> None:
        """Remove every image, container and volume in this work directory's storage, then the storage."""
        self.run("system", "reset", "--force", check=False, timeout=600)
        shutil.rmtree(self.work / "storage", ignore_errors=True)
        shutil.rmtree(self.work / "run", ignore_errors=True)
        shutil.rmtree(self.work / "tmp", ignore_errors=True)
