"""The launcher's command line for a deployed SuperLink: TLS unless --insecure is explicit, the local
--output-dir is not the server's, and success means the results arrived (``launch.fetched_results``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from server import launch, results

ROOT = Path(__file__).resolve().parent.parent


def refused(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        launch.main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_superlink_without_tls_needs_an_explicit_insecure(capsys):
    error = refused(capsys, "--superlink", "link.example.org:9091", "num-rounds=2")
    assert "--root-certificates CA.pem" in error and "--insecure" in error and "server.certs" in error


@pytest.mark.parametrize("argv, message", [
    (["--superlink", "h:1", "--insecure", "--root-certificates", "ca.pem"], "exclude each other"),
    (["--superlink", "h:1", "--root-certificates", "missing-ca.pem"], "no such file"),
    (["--register-supernode", "k.pub"], "need --superlink"),
    (["--insecure"], "need --superlink"),
    (["--fetch", "12"], "need --superlink"),
])  # fmt: skip
def test_inconsistent_security_flags_are_refused(capsys, argv, message):
    assert message in refused(capsys, *argv)


def test_output_dir_with_a_superlink_is_local_and_not_sent(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(launch, "run", lambda *args, **kwargs: calls.append((args, kwargs)) or tmp_path)
    argv = ["--app", str(ROOT), "--superlink", "h:1", "--insecure", "--output-dir", str(tmp_path / "mine"), "seed=3"]
    assert launch.main(argv) == 0
    (app, supernodes, overrides), options = calls[0]
    assert overrides == ["seed=3"] and options["output_dir"] == tmp_path / "mine"
    assert options["superlink"] == "h:1" and options["root_certificates"] is None
    # simulation: the run config's output-dir, as before
    launch.main(["--app", str(ROOT), "--output-dir", str(tmp_path / "sim")])
    assert calls[1][0][2] == [f"output-dir={(tmp_path / 'sim').resolve()}"]


def finished_run(tmp_path: Path) -> results.Collector:
    run_dir = tmp_path / "server" / "20260101-000000-fedmef"
    run_dir.mkdir(parents=True)
    (run_dir / "report.md").write_text("# done\n")
    block = io.StringIO()
    results.publish(run_dir, block)
    collector = results.Collector()
    for line in block.getvalue().splitlines():
        collector.feed(line)
    return collector


def test_success_is_the_results_unpacked_locally(tmp_path):
    shown = io.StringIO()
    run_dir = launch.fetched_results(finished_run(tmp_path), True, tmp_path / "local", shown)
    assert run_dir == (tmp_path / "local" / "20260101-000000-fedmef").resolve()
    assert (run_dir / "report.md").read_text() == "# done\n"
    assert f"results unpacked into {run_dir}" in shown.getvalue()


def test_no_final_line_or_no_results_is_a_failure(tmp_path):
    with pytest.raises(RuntimeError, match="did not finish"):
        launch.fetched_results(finished_run(tmp_path), False, tmp_path / "local", io.StringIO())
    with pytest.raises(RuntimeError, match="results did not arrive: no complete results block"):
        launch.fetched_results(results.Collector(), True, tmp_path / "local", io.StringIO())
    assert not (tmp_path / "local").exists()


def fake_flwr(tmp_path: Path, run_output: str, log_output: str) -> Path:
    """A stand-in for the ``flwr`` command: ``flwr run`` prints ``run_output``, ``flwr log`` ``log_output``."""
    (tmp_path / "run.txt").write_text(run_output)
    (tmp_path / "log.txt").write_text(log_output)
    script = tmp_path / "flwr"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom pathlib import Path\n"
                      f"print(Path({str(tmp_path)!r}, sys.argv[1] + '.txt').read_text(), end='')\n")  # fmt: skip
    script.chmod(0o755)
    return script


def test_a_block_lost_in_the_stream_is_read_from_the_runs_log(tmp_path, monkeypatch):
    block = io.StringIO()
    run_dir = tmp_path / "server" / "20260101-000000-fedmef"
    run_dir.mkdir(parents=True)
    (run_dir / "report.md").write_text("# done\n")
    results.publish(run_dir, block)
    final = "[fedmef] final test accuracy 90.00 % | run directory /srv/runs/20260101-000000-fedmef\n"
    torn = "Successfully started run 4242\n" + final + block.getvalue()[:300] + "\n"  # the stream broke off
    script = fake_flwr(tmp_path, torn, final + block.getvalue())
    monkeypatch.setattr(launch, "flwr_command", lambda: str(script))
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "cli"))
    shown = io.StringIO()
    local = launch.run(ROOT, 0, ["num-rounds=1"], stream=shown, superlink="h:1", output_dir=tmp_path / "local")
    assert "reading run 4242's log" in shown.getvalue()
    assert (local / "report.md").read_text() == "# done\n"
    script.with_name("log.txt").write_text(final)  # the log lost it too: a clear failure
    with pytest.raises(RuntimeError, match="results did not arrive: no complete results block"):
        launch.run(ROOT, 0, ["num-rounds=1"], stream=shown, superlink="h:1", output_dir=tmp_path / "local")
