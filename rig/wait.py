"""Waiting for what another process writes a moment after the client got its answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def caught_up(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30) -> T:
    """What ``read`` gives once ``done`` holds, or at the timeout (the test then judges it).

    nginx writes a request's access-log line, and vLLM counts its tokens, only after the client
    has the last byte of the answer: on a busy machine they lag the client by a moment.
    """
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value
