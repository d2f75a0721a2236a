"""Run commands on the instance: one interface, several transports (SSM, SSH, local)."""

from .base import CommandChannel, CommandResult, LocalChannel

__all__ = ["CommandChannel", "CommandResult", "LocalChannel"]
