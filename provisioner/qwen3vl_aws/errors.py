"""The toolkit's one exception hierarchy, caught once: in the CLI group's ``LazyGroup.invoke``.

Every error carries the exit code the CLI ends with and a message that says what to do next.
"""

from __future__ import annotations


class Qwen3vlError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is shown as is."""

    exit_code: int = 1


class UsageError(Qwen3vlError):
    """Bad input: nothing was created or changed."""

    exit_code = 2


class AwsError(Qwen3vlError):
    """AWS refused or could not be reached (credentials, permissions, quotas, regions)."""

    exit_code = 3


class TerraformError(Qwen3vlError):
    """Terraform failed; its own message is included."""

    exit_code = 4


class NotDeployedError(Qwen3vlError):
    """No deployment by that name is recorded in the state directory."""

    exit_code = 5


class ChannelError(Qwen3vlError):
    """The command channel (SSM or SSH) could not run a command on the instance."""

    exit_code = 6


class CheckFailed(Qwen3vlError):
    """A health check, readiness wait or verification did not pass."""

    exit_code = 7
