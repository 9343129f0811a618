"""Deprecated location of the configuration checks (now archer/config_checks.py); kept for user
components that import `ConfigError` from here."""

import warnings

from archer.config_checks import (
    ConfigError,
    check_choice,
    check_non_negative,
    check_open_unit,
    check_positive,
)

warnings.warn("archer.validation is deprecated: use archer.config_checks", DeprecationWarning, stacklevel=2)

__all__ = ["ConfigError", "check_choice", "check_non_negative", "check_open_unit", "check_positive"]
