"""What every rollout engine shares."""

from __future__ import annotations

import copy

from archer.validation import ConfigError


def sampling_view(engine, **settings):
    """A shallow copy of `engine` with other sampling settings (e.g. the evaluation
    temperature); it shares the engine's model state, so one vLLM instance serves both."""
    view = copy.copy(engine)
    for key, value in settings.items():
        if not hasattr(view, key):
            raise ConfigError(f"rollout has no sampling setting {key!r}")
        setattr(view, key, value)
    return view
