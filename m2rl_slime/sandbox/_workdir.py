"""Working-directory chores of the executor: safe writes and fetches, hostile-tree cleanup, owned directories."""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import logging
import os
import posixpath
import stat
import tempfile
from collections.abc import Collection, Mapping

logger = logging.getLogger(__name__)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LOCK_NAME = ".lock"


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


def fetch_files(root: str, paths: Collection[str], limit: int) -> dict[str, str]:
    """Read requested files (base64) if they exist, are regular and stay inside `root` after symlinks."""
    out: dict[str, str] = {}
    if not paths:
        return out
    real_root = os.path.realpath(root)
    for path in paths:
        rel = safe_relpath(path, f"fetch_files[{path!r}]")
        real = os.path.realpath(os.path.join(root, rel))
        if not real.startswith(real_root + os.sep) or not os.path.isfile(real):
            continue
        with open(real, "rb") as handle:
            out[path] = base64.b64encode(handle.read(limit)).decode("ascii")
    return out


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # a program made it unreadable (mode 000): its owner or root can chmod it back
        os.chmod(name, 0o700, dir_fd=dir_fd, follow_symlinks=False)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _unlink_entries(fd: int, keep: Collection[str]) -> list[str]:
    """Unlink every non-directory in the directory `fd` (except `keep`); return its subdirectory names."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name in keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    return subdirs


def clear_tree(fd: int, keep: Collection[str] = ()) -> None:
    """Delete everything inside the directory open as `fd`, except the top-level names in `keep`.

    Iterative and descriptor-relative: it descends with openat(O_NOFOLLOW) and climbs back with
    openat(".."), holding two descriptors whatever the depth, so a 100,000-deep chain of directories or
    one with a path far beyond PATH_MAX is removed like any other (no recursion, no path strings,
    symlinks never followed). Only for trees nothing else writes to while they are removed.
    """
    current = os.dup(fd)
    pending = _unlink_entries(current, keep)
    stack: list[tuple[str, list[str]]] = []  # (name of the directory we are in, its parent's pending names)
    try:
        while True:
            if pending:
                name = pending.pop()
                child = _open_dir(name, current)
                os.close(current)
                current = child
                stack.append((name, pending))
                pending = _unlink_entries(current, ())
                continue
            if not stack:
                return
            parent = os.open("..", _DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = parent
            name, pending = stack.pop()
            os.rmdir(name, dir_fd=current)
    finally:
        os.close(current)


def empty_dir(path: str, owner: int | None, mode: int, keep: Collection[str] = ()) -> None:
    """Delete everything inside `path` but `keep` (never following symlinks); restore its owner and mode."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fchmod(fd, 0o700)
        clear_tree(fd, keep)
        if owner is not None:
            os.fchown(fd, owner, owner)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Remove `path` and everything below it (see `clear_tree`); a missing path is fine."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    try:
        clear_tree(fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def make_owned_dir(prefix: str, parent: str | None = None, mode: int = 0o711) -> tuple[str, int]:
    """Create ``<parent>/<prefix><pid>-<random>`` with a lock file held (flock) for this process's lifetime.

    Returns (path, lock fd); keep the fd open while the directory is in use. `remove_dead_dirs` tells a
    dead owner's directory from a live one by that lock, whatever became of the owner's pid.
    """
    path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
    os.chmod(path, mode)
    lock = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, lock


def remove_dead_dirs(prefix: str, parent: str | None = None) -> list[str]:
    """Remove directories made by `make_owned_dir` whose owner is gone (their lock is free); return them."""
    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(parent, name)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            lock = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # not one of ours (no lock file) or already gone
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                logger.warning("could not check the owner of %s: %s", path, exc)
            continue  # its owner is alive
        try:
            remove_tree(path)
            removed.append(path)
        except OSError as exc:
            logger.warning("could not remove the dead sandbox directory %s: %s", path, exc)
        finally:
            os.close(lock)
    return removed


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


class TailReader:
    """Drains a pipe from an event loop, keeping only its last `limit` bytes (and counting them all).

    A program's stderr goes through one of these: it can write any amount without ever blocking for
    long or failing a write, and only the tail is kept.
    """

    _CHUNKS_PER_WAKEUP = 16  # so a fast writer cannot starve the event loop

    def __init__(self, fd: int, limit: int, loop):
        os.set_blocking(fd, False)
        self.fd, self.limit, self.loop = fd, limit, loop
        self.size = 0
        self._buf = bytearray()
        self._eof = False
        loop.add_reader(fd, self._read)

    def _read(self, chunks: int = _CHUNKS_PER_WAKEUP) -> None:
        for _ in range(chunks):
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self._eof = True
                self.loop.remove_reader(self.fd)
                return
            self.size += len(chunk)
            self._buf += chunk
            if len(self._buf) > 2 * self.limit:
                del self._buf[: -self.limit]

    def finish(self) -> tuple[str, int]:
        """Read what is left (without waiting), close the pipe; return (decoded tail, total bytes)."""
        if not self._eof:
            self.loop.remove_reader(self.fd)
            self._read(chunks=64)  # a pipe holds at most its buffer (64 KiB by default) once the writer is gone
        os.close(self.fd)
        return bytes(self._buf[-self.limit :]).decode("utf-8", errors="replace"), self.size
