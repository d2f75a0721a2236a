"""Run commands on the instance: one interface, two transports (SSM, SSH)."""

from .base import CommandChannel, CommandResult

__all__ = ["CommandChannel", "CommandResult"]
