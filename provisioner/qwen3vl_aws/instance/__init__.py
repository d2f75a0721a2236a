"""The instance: its command channel, what it says about itself, health and readiness."""
