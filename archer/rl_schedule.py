"""Deprecated location of `RLSchedule` (now in archer/schedules.py); kept for saved run configs
whose `rl._target_` names `archer.rl_schedule.RLSchedule`."""

import warnings

from archer.schedules import RLSchedule

warnings.warn("archer.rl_schedule is deprecated: use archer.schedules.RLSchedule", DeprecationWarning, stacklevel=2)

__all__ = ["RLSchedule"]
