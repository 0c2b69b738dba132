"""One writer per output directory: an advisory ``flock`` on a lock file inside it, held for a block.

The eval runner (``run``, ``collect``, ``score``) and the server-calling analyses (``kl``, ``selfverify``)
resume from what an earlier process left in their directory, so two processes appending to the same files
would interleave records; the second one stops at once with a line naming the directory instead.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


@contextmanager
def hold(directory: str | Path, lock_name: str, holder: str) -> Iterator[None]:
    """Hold `directory`'s lock file `lock_name` (the directory is created) for the block.

    Raises:
        ConfigError: another process holds it; the message names `holder`, the kind of process.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / lock_name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{directory} is in use by another {holder}; wait for it or use another --out") from None
        yield
    finally:
        os.close(fd)
