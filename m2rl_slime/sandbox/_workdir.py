"""Working-directory chores of the executor: safe file writes, fetches, resets and output reads."""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import shutil
from collections.abc import Iterable, Mapping


def safe_relpath(path: str, where: str) -> str:
    """Normalise a client-given relative path; raises ValueError for absolute or escaping paths."""
    if not path or "\x00" in path:
        raise ValueError(f"{where}: empty or NUL-containing path {path!r}")
    norm = posixpath.normpath(path)
    if posixpath.isabs(norm) or norm == "." or norm.split("/")[0] == "..":
        raise ValueError(f"{where}: {path!r} must be a relative path inside the working directory")
    return norm


def decode_files(files: Mapping[str, str | None]) -> dict[str, bytes]:
    """Decode `RunSpec.files` (path -> base64 or None); raises ValueError naming the bad entry."""
    out: dict[str, bytes] = {}
    for path, content in files.items():
        rel = safe_relpath(path, f"files[{path!r}]")
        try:
            out[rel] = b"" if content is None else base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"files[{path!r}]: not valid base64 ({exc})") from None
    return out


def write_file(root: str, rel: str, data: bytes, owner: int | None, mode: int = 0o644) -> None:
    """Create `root/rel` (and its parents) without following symlinks, owned by `owner`."""
    parts = rel.split("/")
    current = root
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if not os.path.isdir(current) or os.path.islink(current):
            os.mkdir(current, 0o755)
            if owner is not None:
                os.chown(current, owner, owner)
    fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        if owner is not None:
            os.fchown(fd, owner, owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def fetch_files(root: str, paths: Iterable[str], limit: int) -> dict[str, str]:
    """Read requested files (base64) if they exist, are regular and stay inside `root` after symlinks."""
    out: dict[str, str] = {}
    real_root = os.path.realpath(root)
    for path in paths:
        rel = safe_relpath(path, f"fetch_files[{path!r}]")
        real = os.path.realpath(os.path.join(root, rel))
        if not real.startswith(real_root + os.sep) or not os.path.isfile(real):
            continue
        with open(real, "rb") as handle:
            out[path] = base64.b64encode(handle.read(limit)).decode("ascii")
    return out


def empty_dir(path: str, owner: int | None, mode: int) -> None:
    """Delete everything inside `path` (never following symlinks) and restore its owner and mode."""
    os.chmod(path, 0o700)
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _make_deletable(entry.path)
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    if owner is not None:
        os.chown(path, owner, owner)
    os.chmod(path, mode)


def _make_deletable(top: str) -> None:
    """rmtree fails on directories a program made unreadable (mode 000); root can chmod them back."""
    for dirpath, dirnames, _ in os.walk(top, followlinks=False):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)


def read_stream(fd: int, limit: int, *, tail: bool) -> tuple[str, int]:
    """Decode (UTF-8, invalid bytes replaced) at most `limit` bytes of a memfd; return (text, size)."""
    size = os.fstat(fd).st_size
    start = max(0, size - limit) if tail else 0
    want = min(size - start, limit)
    chunks: list[bytes] = []
    offset = start
    while want > 0:
        chunk = os.pread(fd, min(want, 1 << 22), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        want -= len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace"), size
