"""The server image's entrypoint: start the SuperLink secure by default.

``python -m server.container`` without arguments runs ``flower-superlink`` with TLS and SuperNode
authentication, reading ``ca.pem``, ``server.pem`` and ``server.key`` from the mounted certificate
directory (``$FEDMEF_CERTS``, default ``/etc/fedmef/certs``; ``python -m server.certs`` makes a
test set) and exits with a clear message when one is missing. Any arguments replace these defaults
and go to ``flower-superlink`` as they are: an insecure SuperLink takes an explicit ``--insecure``.
Runtime dependency installation stays disabled either way (the image has the app's dependencies).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_CERTS = Path("/etc/fedmef/certs")
DATABASE = "/var/lib/fedmef/state.db"
PORT = 9091
CERTIFICATE_FILES = ("ca.pem", "server.pem", "server.key")


def superlink_command(args: list[str], certs: Path) -> list[str]:
    """The ``flower-superlink`` command line for the container's arguments ``args``."""
    command = ["flower-superlink", "--disable-runtime-dependency-installation"]
    if args:
        return command + args
    missing = [name for name in CERTIFICATE_FILES if not (certs / name).is_file()]
    if missing:
        raise SystemExit(
            f"[fedmef] the SuperLink needs TLS material: {', '.join(missing)} missing in {certs}. Mount a "
            f"directory holding {', '.join(CERTIFICATE_FILES)} there (-v ./certs:{certs}:ro; "
            "python -m server.certs DIR --host YOUR.HOST makes a test set), or pass your own flower-superlink "
            "arguments (--insecure only on a trusted network)."
        )
    ca, certificate, key = (str(certs / name) for name in CERTIFICATE_FILES)
    return command + [
        "--ssl-ca-certfile", ca, "--ssl-certfile", certificate, "--ssl-keyfile", key, "--enable-supernode-auth",
        "--host", "0.0.0.0", "--port", str(PORT), "--database", DATABASE,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    certs = Path(os.environ.get("FEDMEF_CERTS", DEFAULT_CERTS))
    command = superlink_command(sys.argv[1:] if argv is None else argv, certs)
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
