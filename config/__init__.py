"""Typed settings (environment + TOML file + CLI flags) and deploy configuration files."""

from config.settings import Secret, Settings, load_settings

__all__ = ["Secret", "Settings", "load_settings"]
