"""Start a local FedMef federation with ``flwr run`` and check that it really finished.

``python -m server.launch [--supernodes N] [key=value ...]`` runs the app in Flower's local
simulation (``num-supernodes`` clients), streams its progress, then

* fails unless the run directory holds a finished ``report.md`` (``flwr run`` exits 0 even when
  the ServerApp crashed), printing the final accuracy and the run directory;
* stops the local SuperLink daemon that ``flwr run`` leaves behind.

``key=value`` pairs and ``conf/*.toml`` overlays override ``[tool.flwr.app.config]``; bare words
are quoted as TOML strings (``method=feddst`` works). Flower's state lives in ``$FLWR_HOME`` (default ``./.flwr``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

RUN_DIRECTORY = re.compile(r"\[fedmef\] .*run directory (\S+)")
FINAL = re.compile(r"\[fedmef\] final test accuracy ([0-9.]+) %")


def toml_pair(pair: str) -> str:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise SystemExit(f"run-config override must be key=value, got {pair!r}")
    try:
        tomllib.loads(f"v = {value}")
    except tomllib.TOMLDecodeError:
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={value}"


def expand_overlays(overrides: list[str]) -> list[str]:
    """Replace each ``conf/*.toml`` overlay path by its ``key=value`` pairs (later ones win)."""
    pairs = []
    for item in overrides:
        if item.endswith(".toml") and "=" not in item:
            path = Path(item)
            if not path.is_file():
                raise SystemExit(f"run-config overlay not found: {item}")
            pairs += [f"{key}={tomli_value(value)}" for key, value in tomllib.loads(path.read_text()).items()]
        else:
            pairs.append(item)
    return pairs


def tomli_value(value) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def check_config(app: Path, pairs: list[str]) -> None:
    """Fail before starting Flower when the merged run config is invalid."""
    from fedmef.config import RunConfig

    declared = tomllib.loads((app / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    overrides = tomllib.loads("\n".join(f"{key} = {value}" for key, _, value in (p.partition("=") for p in pairs)))
    RunConfig.from_run_config(declared | overrides)


def flwr_home() -> Path:
    home = Path(os.environ.get("FLWR_HOME", Path.cwd() / ".flwr")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def stop_local_superlink(home: Path) -> int:
    """Terminate the SuperLink daemons (and their SuperExec) that use ``home``'s database."""
    stopped = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(args).decode(errors="replace")
        # the daemon's --database lives in <home>/local-superlink/: match that exact directory, so
        # a SuperLink of another FLWR_HOME whose path merely starts the same is left alone
        if "flower-superlink" in text and f"{home / 'local-superlink'}/" in text:
            os.kill(int(proc.name), signal.SIGTERM)
            stopped += 1
    return stopped


def flower_env(home: Path) -> dict[str, str]:
    """Our environment for Flower's processes: they start each other by name (flower-superexec,
    flwr-serverapp ...), so this interpreter's bin directory must be on PATH even without an
    activated venv."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return os.environ | {"FLWR_HOME": str(home), "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "PATH": path}


def add_connection(home: Path, name: str, address: str, root_certificates: Path | None = None) -> None:
    """Record a SuperLink connection in ``$FLWR_HOME/config.toml``: TLS trusting ``root_certificates``
    (a CA's PEM file), or insecure (only for a SuperLink on a trusted local network)."""
    import tomli_w

    path = home / "config.toml"
    config = tomllib.loads(path.read_text()) if path.is_file() else {}
    if root_certificates:
        security = {"root-certificates": str(Path(root_certificates).resolve())}
    else:
        security = {"insecure": True}
    config.setdefault("superlink", {})[name] = {"address": address} | security
    path.write_text(tomli_w.dumps(config))


def run(app: Path, supernodes: int, overrides: list[str], stream=sys.stdout, superlink: str | None = None,
        root_certificates: Path | None = None) -> Path:
    """Run one federation; return its run directory, or raise RuntimeError if it did not finish.

    Raises ValueError at once, before Flower starts, when the run config is invalid. With
    ``superlink`` (``host:port``) the run goes to that deployed SuperLink instead of a local
    simulation of ``supernodes`` clients; ``root_certificates`` (a CA's PEM file) makes that
    connection TLS.
    """
    pairs = [toml_pair(pair) for pair in expand_overlays(overrides)]
    check_config(app, pairs)
    home = flwr_home()
    env = flower_env(home)
    flwr = Path(sys.executable).with_name("flwr")
    command = [str(flwr), "run", str(app.resolve())]
    if superlink:
        add_connection(home, "fedmef-deployment", superlink, root_certificates)
        command += ["fedmef-deployment", "--stream"]
    else:
        command += ["--stream", "--federation-config", f"num-supernodes={supernodes}"]
    if pairs:
        command += ["--run-config", " ".join(pairs)]
    run_dir = None
    # cwd = FLWR_HOME: the daemon keeps this cwd and Ray puts it on workers' sys.path; the app
    # must be imported from Flower's unpacked copy, not from whatever directory we were called in.
    with subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            for line in proc.stdout:
                stream.write(line)
                stream.flush()
                if match := RUN_DIRECTORY.search(line):
                    run_dir = Path(match.group(1))
        finally:
            proc.wait()
            if not superlink:
                stop_local_superlink(home)
    if proc.returncode != 0:
        raise RuntimeError(f"flwr run exited with code {proc.returncode}")
    if run_dir is None or not (run_dir / "report.md").is_file():
        raise RuntimeError(f"the federation did not finish (run directory: {run_dir}); see the log above")
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="run-config overrides: key=value or an overlay.toml")
    parser.add_argument("--app", type=Path, default=Path.cwd(), help="the Flower app directory (pyproject.toml)")
    parser.add_argument("--supernodes", type=int, default=10, help="simulated clients")
    parser.add_argument("--superlink", help="host:port of a deployed SuperLink (default: local simulation)")
    parser.add_argument("--root-certificates", type=Path, help="CA certificate (PEM) of a TLS SuperLink")
    parser.add_argument("--output-dir", type=Path, help="where run directories go (default: run config)")
    parser.add_argument("--stop", action="store_true", help="only stop the local SuperLink")
    args = parser.parse_args(argv)
    if args.stop:
        print(f"stopped {stop_local_superlink(flwr_home())} local SuperLink process(es)")
        return 0
    if not (args.app / "pyproject.toml").is_file():
        parser.error(f"{args.app} has no pyproject.toml: pass --app <checkout>")
    if args.supernodes < 1:
        parser.error("--supernodes must be at least 1")
    overrides = list(args.overrides)
    if args.output_dir is not None:
        overrides.append(f"output-dir={args.output_dir.resolve()}")
    try:
        run_dir = run(args.app, args.supernodes, overrides, superlink=args.superlink,
                      root_certificates=args.root_certificates)
    except (RuntimeError, ValueError) as error:
        print(f"[fedmef] FAILED: {error}", file=sys.stderr)
        return 1
    print(f"[fedmef] report: {run_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
