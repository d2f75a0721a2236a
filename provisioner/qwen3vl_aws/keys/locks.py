"""One operation of a kind at a time per deployment on this machine (``fcntl`` file locks).

The lock is released by the kernel when the process ends, so a crashed run never leaves it held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..deployment import Deployment
from ..errors import UsageError


@contextmanager
def exclusive(deployment: Deployment, operation: str) -> Iterator[None]:
    """Hold ``<deployment dir>/<operation>.lock``; fail at once, naming the holder, if taken."""
    deployment.directory.mkdir(parents=True, exist_ok=True)
    path = deployment.directory / f"{operation}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(
                f"Another `qwen3vl-aws {operation}` for deployment {deployment.name!r} is running "
                f"({holder}). Wait for it to finish; if it was interrupted, run the command again "
                "afterwards to resume."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
