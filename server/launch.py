"""Start a FedMef federation with ``flwr run`` and check that it really finished.

``python -m server.launch [--supernodes N] [key=value ...]`` runs the app in Flower's local
simulation (``num-supernodes`` clients), streams its progress, then

* fails unless the run directory holds a finished ``report.md`` (``flwr run`` exits 0 even when
  the ServerApp crashed), printing the final accuracy and the run directory;
* stops the local SuperLink daemon that ``flwr run`` leaves behind.

``--superlink HOST:PORT --root-certificates ca.pem`` (``--insecure`` instead: loopback or a trusted
network only) runs on a deployed SuperLink. The server keeps its run directory on its own disk;
success is the results block (``server/results.py``) arriving through the log, verified and
unpacked into the local ``--output-dir`` (default ``./runs``); ``--fetch RUN-ID`` fetches them again
from the run's log. ``--register-supernode KEY.pub`` registers a SuperNode's public key with a
SuperLink that runs ``--enable-supernode-auth``.

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

from . import results

CONNECTION = "fedmef-deployment"  # the launcher's entry in $FLWR_HOME/config.toml
REGISTERED = re.compile(r"SuperNode (\d+) registered")
RUN_DIRECTORY = re.compile(r"\[fedmef\] .*run directory (\S+)")
FINAL = re.compile(r"\[fedmef\] final test accuracy ([0-9.]+) %")
STARTED = re.compile(r"Successfully started run (\d+)")


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
        root_certificates: Path | None = None, output_dir: Path | None = None) -> Path:
    """Run one federation; return its run directory, or raise RuntimeError if it did not finish.

    Raises ValueError at once, before Flower starts, when the run config is invalid. With
    ``superlink`` (``host:port``) the run goes to that deployed SuperLink instead of a local
    simulation of ``supernodes`` clients; ``root_certificates`` (a CA's PEM file) makes that
    connection TLS, None insecure. The returned directory is then the local copy of the results,
    unpacked into ``output_dir`` (default ``./runs``); the server's run config keeps its own output-dir.
    """
    pairs = [toml_pair(pair) for pair in expand_overlays(overrides)]
    check_config(app, pairs)
    home = flwr_home()
    env = flower_env(home)
    command = [flwr_command(), "run", str(app.resolve())]
    if superlink:
        add_connection(home, CONNECTION, superlink, root_certificates)
        command += [CONNECTION, "--stream"]
    else:
        command += ["--stream", "--federation-config", f"num-supernodes={supernodes}"]
    if pairs:
        command += ["--run-config", " ".join(pairs)]
    run_dir, run_id, finished, collector = None, None, False, results.Collector()
    # cwd = FLWR_HOME: the daemon keeps this cwd and Ray puts it on workers' sys.path; the app
    # must be imported from Flower's unpacked copy, not from whatever directory we were called in.
    with subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            for line in proc.stdout:
                if collector.feed(line):
                    continue  # the results block is for us, not for the screen
                stream.write(line)
                stream.flush()
                if match := RUN_DIRECTORY.search(line):
                    run_dir = Path(match.group(1))
                if match := STARTED.search(line):
                    run_id = int(match.group(1))
                finished = finished or bool(FINAL.search(line))
        finally:
            proc.wait()
            if not superlink:
                stop_local_superlink(home)
    if proc.returncode != 0:
        raise RuntimeError(f"flwr run exited with code {proc.returncode}")
    if superlink:
        destination = output_dir or Path("runs")
        if finished and run_id is not None and not collector.intact:  # Flower keeps the log: read it again
            stream.write(f"[fedmef] the results block did not come through the stream: reading run {run_id}'s log\n")
            return fetch(run_id, destination, stream)
        return fetched_results(collector, finished, destination, stream)
    if run_dir is None or not (run_dir / "report.md").is_file():
        raise RuntimeError(f"the federation did not finish (run directory: {run_dir}); see the log above")
    return run_dir


def fetched_results(collector: results.Collector, finished: bool, destination: Path, stream) -> Path:
    """The deployed run's results, verified and unpacked into ``destination``; RuntimeError when the
    run did not finish or its results did not arrive intact."""
    if not finished:
        raise RuntimeError("the federation did not finish (no final accuracy in the log); see the log above")
    try:
        run_dir = collector.results().unpack(destination)
    except results.ResultsError as error:
        raise RuntimeError(f"the federation finished but its results did not arrive: {error}") from error
    if not (run_dir / "report.md").is_file():
        raise RuntimeError(f"the results in {run_dir} hold no report.md")
    stream.write(f"[fedmef] results unpacked into {run_dir} (the server keeps its own run directory)\n")
    for reason in collector.left_out:
        stream.write(f"[fedmef] left on the server: {reason}\n")
    stream.flush()
    return run_dir


def fetch(run_id: int, destination: Path, stream=sys.stdout) -> Path:
    """The results of the run ``run_id`` on the SuperLink of the launcher's connection, read from
    the run's log (``flwr log RUN-ID --show``, kept by the SuperLink), unpacked into ``destination``."""
    home = flwr_home()
    answer = subprocess.run([flwr_command(), "log", str(run_id), CONNECTION, "--show"], cwd=home,
                            env=flower_env(home), capture_output=True, text=True, timeout=600)  # fmt: skip
    if answer.returncode != 0:
        raise RuntimeError(f"flwr log {run_id} failed: {(answer.stdout + answer.stderr).strip()[-2000:]}")
    collector = results.Collector()
    finished = False
    for line in answer.stdout.splitlines():
        collector.feed(line)
        finished = finished or bool(FINAL.search(line))
    return fetched_results(collector, finished, destination, stream)


def flwr_command() -> str:
    return str(Path(sys.executable).with_name("flwr"))


def register_supernode(superlink: str, root_certificates: Path | None, public_key: Path) -> int:
    """Register a SuperNode's OpenSSH public key with a SuperLink running ``--enable-supernode-auth``
    (``flwr supernode register``); return its node id, RuntimeError with Flower's answer otherwise."""
    home = flwr_home()
    add_connection(home, CONNECTION, superlink, root_certificates)
    answer = subprocess.run([flwr_command(), "supernode", "register", str(Path(public_key).resolve()), CONNECTION],
                            cwd=home, env=flower_env(home), capture_output=True, text=True, timeout=120)  # fmt: skip
    match = REGISTERED.search(answer.stdout)
    if answer.returncode != 0 or not match:
        raise RuntimeError(f"registering {public_key} failed: {(answer.stdout + answer.stderr).strip()}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="run-config overrides: key=value or an overlay.toml")
    parser.add_argument("--app", type=Path, default=Path.cwd(), help="the Flower app directory (pyproject.toml)")
    parser.add_argument("--supernodes", type=int, default=10, help="simulated clients")
    parser.add_argument("--superlink", help="host:port of a deployed SuperLink (default: local simulation)")
    parser.add_argument("--root-certificates", type=Path, help="CA certificate (PEM) of a TLS SuperLink")
    parser.add_argument("--insecure", action="store_true",
                        help="connect to --superlink without TLS (loopback or a trusted network only)")  # fmt: skip
    parser.add_argument("--register-supernode", type=Path, action="append", metavar="KEY.pub",
                        help="register a SuperNode's public key with --superlink and exit (repeat)")  # fmt: skip
    parser.add_argument("--fetch", type=int, metavar="RUN-ID",
                        help="only fetch the results of a finished run from --superlink into --output-dir")  # fmt: skip
    parser.add_argument("--output-dir", type=Path,
                        help="simulation: where run directories go (default: run config); with --superlink: "
                             "where the fetched results go (default ./runs; the server keeps its own)")  # fmt: skip
    parser.add_argument("--stop", action="store_true", help="only stop the local SuperLink")
    args = parser.parse_args(argv)
    if args.stop:
        print(f"stopped {stop_local_superlink(flwr_home())} local SuperLink process(es)")
        return 0
    if args.superlink:
        check_security(parser, args)
    elif args.root_certificates or args.insecure or args.register_supernode or args.fetch is not None:
        parser.error("--root-certificates, --insecure, --register-supernode and --fetch need --superlink HOST:PORT")
    if args.register_supernode:
        return register(args.superlink, args.root_certificates, args.register_supernode)
    if args.fetch is not None:
        add_connection(flwr_home(), CONNECTION, args.superlink, args.root_certificates)
        try:
            run_dir = fetch(args.fetch, args.output_dir or Path("runs"))
        except RuntimeError as error:
            print(f"[fedmef] FAILED: {error}", file=sys.stderr)
            return 1
        print(f"[fedmef] report: {run_dir / 'report.md'}")
        return 0
    if not (args.app / "pyproject.toml").is_file():
        parser.error(f"{args.app} has no pyproject.toml: pass --app <checkout>")
    if args.supernodes < 1:
        parser.error("--supernodes must be at least 1")
    overrides = list(args.overrides)
    if args.output_dir is not None and not args.superlink:
        overrides.append(f"output-dir={args.output_dir.resolve()}")
    try:
        run_dir = run(args.app, args.supernodes, overrides, superlink=args.superlink,
                      root_certificates=args.root_certificates, output_dir=args.output_dir)  # fmt: skip
    except (RuntimeError, ValueError) as error:
        print(f"[fedmef] FAILED: {error}", file=sys.stderr)
        return 1
    print(f"[fedmef] report: {run_dir / 'report.md'}")
    return 0


def check_security(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """TLS unless the user asked for --insecure explicitly."""
    if args.insecure and args.root_certificates:
        parser.error("--insecure and --root-certificates exclude each other")
    if not args.insecure and not args.root_certificates:
        parser.error(f"--superlink {args.superlink} needs --root-certificates CA.pem (the CA that signed the "
                     "SuperLink's certificate; python -m server.certs makes a test one), or --insecure for a "
                     "SuperLink on loopback or a trusted network")  # fmt: skip
    if args.root_certificates and not args.root_certificates.is_file():
        parser.error(f"--root-certificates {args.root_certificates}: no such file")


def register(superlink: str, root_certificates: Path | None, keys: list[Path]) -> int:
    for key in keys:
        try:
            node_id = register_supernode(superlink, root_certificates, key)
        except RuntimeError as error:
            print(f"[fedmef] FAILED: {error}", file=sys.stderr)
            return 1
        print(f"[fedmef] registered {key} as SuperNode {node_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
