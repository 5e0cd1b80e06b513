"""The results block (``server/results.py``): what travels, that it arrives intact or not at all,
and that unpacking it cannot write outside the destination."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from server import results


def run_directory(tmp_path: Path) -> Path:
    run_dir = tmp_path / "server" / "20260101-120000-fedmef"
    run_dir.mkdir(parents=True)
    (run_dir / "report.md").write_text("# FedMef run\n")
    (run_dir / "metrics.csv").write_text("round,accuracy\n1,0.5\n")
    (run_dir / "model.pt").write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "accuracy.png").write_bytes(b"\x89PNG" + bytes(1000))
    return run_dir


def published(run_dir: Path) -> list[str]:
    out = io.StringIO()
    results.publish(run_dir, out)
    return out.getvalue().splitlines(keepends=True)


def collect(lines: list[str]) -> results.Collector:
    collector = results.Collector()
    for line in lines:
        collector.feed(line)
    return collector


def test_round_trip_between_foreign_log_lines(tmp_path):
    run_dir = run_directory(tmp_path)
    lines = published(run_dir)
    noise = "\x1b[92mINFO \x1b[0m:      heartbeat\n"
    mixed = [noise] + [line for line in lines for line in (line, noise)]  # Flower's lines interleave
    collector = results.Collector()
    shown = [line for line in mixed if not collector.feed(line)]
    assert shown == [noise] * (len(lines) + 1)
    local = collector.results().unpack(tmp_path / "user")
    assert local == (tmp_path / "user" / run_dir.name).resolve()
    for name in ["report.md", "metrics.csv", "model.pt", "plots/accuracy.png"]:
        assert (local / name).read_bytes() == (run_dir / name).read_bytes()
    assert collector.left_out == []


def test_large_files_stay_on_the_server_and_are_named(tmp_path, monkeypatch):
    run_dir = run_directory(tmp_path)
    monkeypatch.setattr(results, "MAX_FILE_BYTES", 5000)
    monkeypatch.setattr(results, "MAX_TOTAL_BYTES", 1000)  # smallest first: report and metrics fit, the plot not
    lines = published(run_dir)
    collector = collect(lines)
    shown = [line for line in lines if not results.Collector().feed(line)]
    assert len(shown) == 2 and all("[fedmef] results left out" in line for line in shown)
    assert collector.left_out == ["plots/accuracy.png (1004 bytes, past the 1000 bytes in all)",
                                  "model.pt (10240 bytes, over the 5000 bytes per file)"]  # fmt: skip
    local = collector.results().unpack(tmp_path / "user")
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == [
        "metrics.csv", "report.md"]


def test_symlinks_and_hidden_files_do_not_travel(tmp_path):
    run_dir = run_directory(tmp_path)
    (run_dir / ".checkpoint.pt.tmp").write_bytes(b"half written")
    secret = tmp_path / "secret.txt"
    secret.write_text("server-only")
    (run_dir / "link.txt").symlink_to(secret)
    local = collect(published(run_dir)).results().unpack(tmp_path / "user")
    assert not (local / "link.txt").exists() and not (local / ".checkpoint.pt.tmp").exists()


def test_unpacking_twice_does_not_overwrite(tmp_path):
    results_block = collect(published(run_directory(tmp_path))).results()
    first, second = results_block.unpack(tmp_path / "user"), results_block.unpack(tmp_path / "user")
    assert second.name == first.name + "-1" and (second / "report.md").is_file()


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines[:1] + [lines[1].replace("A", "B", 1).replace("results + B", "results + A", 1)]
     + lines[2:], "corrupted"),
    (lambda lines: lines[:1] + lines[2:], "corrupted|base64"),  # a lost line
    (lambda lines: lines[:-1], "began but did not end"),
    (lambda lines: [], "never began"),
])  # fmt: skip
def test_a_damaged_block_is_refused(tmp_path, monkeypatch, damage, message):
    monkeypatch.setattr(results, "LINE_CHARS", 64)
    lines = published(run_directory(tmp_path))
    with pytest.raises(results.ResultsError, match=message):
        collect(damage(lines)).results()


def block(archive: bytes, name: str = "run") -> list[str]:
    text = base64.b64encode(archive).decode()
    return [f"[fedmef] results begin {name} {len(archive)} {hashlib.sha256(archive).hexdigest()}\n",
            f"[fedmef] results + {text}\n", "[fedmef] results end\n"]  # fmt: skip


def archive_with(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("entry", [
    member("../escaped.txt"), member("/tmp/absolute.txt"), member("link", tarfile.SYMTYPE, "/etc/passwd"),
    member("hard", tarfile.LNKTYPE, "report.md"),
])  # fmt: skip
def test_a_verified_block_with_unsafe_entries_writes_nothing_outside(tmp_path, entry):
    archive = archive_with((member("report.md"), b"ok"), (entry, b"" if entry.issym() or entry.islnk() else b"evil"))
    with pytest.raises(results.ResultsError, match="unsafe entries"):
        collect(block(archive)).results().unpack(tmp_path / "user" / "dest")
    assert not (tmp_path / "user").exists() and not Path("/tmp/absolute.txt").exists()


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b"])
def test_unsafe_run_names_are_refused(name):
    collector = collect(block(archive_with((member("report.md"), b"ok")), name=name))
    with pytest.raises(results.ResultsError):
        collector.results()
