"""Deprecated location of the group filters and overlong handling (now archer/group_filters.py);
kept for saved run configs whose `filter._target_` / `overlong._target_` name archer.sampling."""

import warnings

from archer.group_filters import *  # noqa: F403
from archer.group_filters import __all__  # noqa: F401

warnings.warn("archer.sampling is deprecated: use archer.group_filters", DeprecationWarning, stacklevel=2)
