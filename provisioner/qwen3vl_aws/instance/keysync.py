"""Bring the instance's key file in line with secret versions: ``qwen3vl-keysync`` over the channel.

Only version ids travel; the instance fetches the values itself with its role.
"""

from __future__ import annotations

import shlex

from ..contract import instance_contract
from .channel.base import CommandChannel

# The instance's key sync script; QWEN3VL_ROOT (unset on an instance) lets the node rig run it in
# a scratch root.
KEYSYNC = '"${QWEN3VL_ROOT:-}"' + shlex.quote(instance_contract().paths["keysync"])


def keysync_script(current: str, pending: str | None) -> str:
    """The shell line that syncs an instance to these secret versions (ids only, never a key)."""
    args = ["--current", current] + (["--pending", pending] if pending else [])
    return f"{KEYSYNC} {shlex.join(args)}"


class ChannelKeySync:
    """Runs ``qwen3vl-keysync`` on the instance through the command channel (version ids only)."""

    def __init__(self, channel: CommandChannel) -> None:
        self._channel = channel

    def sync(self, current: str, pending: str | None) -> None:
        self._channel.run(keysync_script(current, pending), timeout=120).check(
            "The key sync (qwen3vl-keysync)"
        )
