"""Errors raised while building settings."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing, unknown or has a value of the wrong type."""
