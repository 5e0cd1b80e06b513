"""Results through Flower's log: the finished run directory travels to whoever launched the run.

In a deployment the ServerApp writes its run directory on the SuperLink's disk (a container volume,
a remote host). ``publish`` prints the directory's small files into the ServerApp's log as one
marked block, which ``flwr run --stream`` (or ``flwr log RUN-ID --show``) delivers to the launcher
wherever the SuperLink runs::

    [fedmef] results begin <run name> <tar.gz bytes> <sha256 of the tar.gz>
    [fedmef] results + <base64 line>          (one line per 1 KiB of base64)
    [fedmef] results end

Files over ``MAX_FILE_BYTES`` (a large model.pt) or past ``MAX_TOTAL_BYTES`` stay on the server;
each is named in a ``[fedmef] results left out ...`` line. ``Collector`` reads the block back from
the log lines, checks size and hash, and ``Results.unpack`` extracts it with tarfile's ``data``
filter (no absolute paths, no ``..``, no links or devices) into ``<destination>/<run name>/``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 4 * 2**20  # model.pt of the small models fits; ResNet18's 45 MB stays on the server
MAX_TOTAL_BYTES = 16 * 2**20
LINE_CHARS = 1024

BEGIN = re.compile(r"\[fedmef\] results begin (\S+) (\d+) ([0-9a-f]{64})\s*$")
DATA = re.compile(r"\[fedmef\] results \+ ([A-Za-z0-9+/=]+)\s*$")
END = re.compile(r"\[fedmef\] results end\s*$")
LEFT_OUT = re.compile(r"\[fedmef\] results left out (.*\S)\s*$")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def plain_visible_file(path: Path, run_dir: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(run_dir).parts)
    return path.is_file() and not path.is_symlink() and not hidden


def select(run_dir: Path) -> tuple[list[Path], list[str]]:
    """The run directory's regular files that travel (smallest first, within the limits) and a
    reason for each one that does not. Links and hidden files (temporaries) never travel."""
    files = sorted((path for path in run_dir.rglob("*") if plain_visible_file(path, run_dir)),
                   key=lambda path: (path.stat().st_size, str(path)))  # fmt: skip
    chosen, left_out, total = [], [], 0
    for path in files:
        size, name = path.stat().st_size, path.relative_to(run_dir).as_posix()
        if size > MAX_FILE_BYTES:
            left_out.append(f"{name} ({size} bytes, over the {MAX_FILE_BYTES} bytes per file)")
        elif total + size > MAX_TOTAL_BYTES:
            left_out.append(f"{name} ({size} bytes, past the {MAX_TOTAL_BYTES} bytes in all)")
        else:
            chosen.append(path)
            total += size
    return chosen, left_out


def pack(run_dir: Path, files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in files:
            tar.add(path, arcname=path.relative_to(run_dir).as_posix(), recursive=False)
    return buffer.getvalue()


def publish(run_dir: Path, stream=sys.stdout) -> None:
    """Print ``run_dir``'s small files as a results block (call it once the directory is final)."""
    run_dir = Path(run_dir)
    files, left_out = select(run_dir)
    archive = pack(run_dir, files)
    lines = [f"[fedmef] results left out {reason}" for reason in left_out]
    lines.append(f"[fedmef] results begin {run_dir.name} {len(archive)} {hashlib.sha256(archive).hexdigest()}")
    text = base64.b64encode(archive).decode("ascii")
    lines += [f"[fedmef] results + {text[i:i + LINE_CHARS]}" for i in range(0, len(text), LINE_CHARS)]
    lines.append("[fedmef] results end")
    stream.write("\n".join(lines) + "\n")
    stream.flush()


class ResultsError(RuntimeError):
    """The results block is missing, incomplete, corrupted or unsafe to unpack."""


@dataclass
class Results:
    """A verified results block: the run's name, the tar.gz and what the server left out."""

    name: str
    archive: bytes
    left_out: list[str]

    def unpack(self, destination: Path) -> Path:
        """Extract into a new ``destination/<name>`` (``<name>-1``, ``-2`` ... when that exists, e.g.
        because the SuperLink shares this disk) and return it."""
        with tarfile.open(fileobj=io.BytesIO(self.archive), mode="r:gz") as tar:
            members = tar.getmembers()
            unsafe = [member.name for member in members if not (member.isfile() or member.isdir())
                      or member.name.startswith("/") or ".." in Path(member.name).parts]  # fmt: skip
            if unsafe:  # publish writes relative plain files only; the data filter below is a second guard
                raise ResultsError(f"the results hold unsafe entries (links, absolute paths or '..'): {unsafe}")
            destination = Path(destination).expanduser().resolve()
            destination.mkdir(parents=True, exist_ok=True)
            target, suffix = destination / self.name, 1
            while target.exists():
                target, suffix = destination / f"{self.name}-{suffix}", suffix + 1
            target.mkdir()
            try:
                tar.extractall(target, members=members, filter="data")
            except tarfile.FilterError as error:
                raise ResultsError(f"unsafe entry in the results: {error}") from error
        return target


@dataclass
class Collector:
    """Fed the log lines one by one; keeps the last complete results block."""

    left_out: list[str] = field(default_factory=list)
    _header: tuple[str, int, str] | None = None
    _chunks: list[str] = field(default_factory=list)
    _complete: tuple[tuple[str, int, str], str] | None = None

    def feed(self, line: str) -> bool:
        """Take ``line`` if it belongs to a results block (True: not for the user's screen)."""
        if "[fedmef] results " not in line:
            return False
        if match := BEGIN.search(line):
            self._header, self._chunks = (match.group(1), int(match.group(2)), match.group(3)), []
        elif match := DATA.search(line):
            self._chunks.append(match.group(1))
        elif END.search(line):
            if self._header:
                self._complete, self._header = (self._header, "".join(self._chunks)), None
        elif match := LEFT_OUT.search(line):
            self.left_out.append(match.group(1))
            return False  # the user should see what stayed on the server
        else:
            return False
        return True

    @property
    def intact(self) -> bool:
        try:
            self.results()
        except ResultsError:
            return False
        return True

    def results(self) -> Results:
        """The verified block, or ResultsError saying what is wrong with it."""
        if self._complete is None:
            state = "began but did not end" if self._header else "never began"
            raise ResultsError(f"no complete results block in the log (it {state})")
        (name, size, digest), text = self._complete
        if not SAFE_NAME.fullmatch(name):
            raise ResultsError(f"the results carry an unsafe run name {name!r}")
        try:
            archive = base64.b64decode(text, validate=True)
        except ValueError as error:
            raise ResultsError(f"the results block is not valid base64: {error}") from error
        if len(archive) != size or hashlib.sha256(archive).hexdigest() != digest:
            raise ResultsError(f"the results block is corrupted: {len(archive)} of {size} bytes arrived, "
                               f"sha256 {hashlib.sha256(archive).hexdigest()} != {digest}")  # fmt: skip
        return Results(name, archive, list(self.left_out))
