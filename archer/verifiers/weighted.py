"""Several rewards at once, and rewards from any Python function.

`WeightedReward` sums named parts with weights, e.g. correctness plus a format reward; each
part is logged as `reward/<name>`, and the part named by `accuracy_part` is what training
accuracy and held-out pass@k measure (a format bonus must not count as solving the problem).
`FunctionReward` wraps a user's plain `(response, sample) -> float` function, as TRL users
write reward functions, by its dotted path (so that scoring workers can import it).

Rewards may be signed: a part or a function can return a penalty below 0. Every part is
clipped to its own `reward_range` ((0, 1) for Archer's verifiers; None for no clip), and a
value that is not finite is a failure (scored 0 and counted in `reward/errors`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping

from archer.config_checks import ConfigError
from archer.types import Sample
from archer.verifiers.scores import clip_reward, reward_range


def _check_range(key: str, bounds) -> tuple[float, float] | None:
    if bounds is None:
        return None
    bounds = tuple(float(b) for b in bounds)
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise ConfigError(f"{key} must be null or [low, high] with low < high, got {list(bounds)}")
    return bounds


class FunctionReward:
    """A user's `function(response, sample) -> float`, named by its dotted path.

    Args:
        function: "package.module.function" (or "package.module:function"), or the function
            itself (`{_target_: package.module.function, _partial_: true}` in YAML); its module
            must be importable where training runs (scoring workers import it too).
        reward_range: [low, high] to clip to, or None (default) for any finite value.

    Example:
        >>> FunctionReward("archer.verifiers.examples.length_penalty")("x" * 300, Sample("a", "1+1", 2))
        -0.5
    """

    def __init__(self, function: str | Callable, reward_range: list[float] | None = None, isolated: bool = False):
        self.reward_range = _check_range("verifier.reward_range", reward_range)
        # True: score in worker processes (slow functions); False: in the trainer's process
        self.isolated = bool(isolated)
        if callable(function):  # built by Hydra: {_target_: my_rewards.brevity, _partial_: true}
            self.function_path, self._function = None, function
        else:
            self.function_path = str(function)
            self._function = _resolve(self.function_path)

    def __call__(self, response: str, sample: Sample) -> float:
        return float(self._function(response, sample))

    def __getstate__(self):
        # a path is re-imported in the worker; a callable pickles by reference (module-level functions)
        function = self.function_path if self.function_path is not None else self._function
        return {"function": function, "reward_range": self.reward_range, "isolated": self.isolated}

    def __setstate__(self, state):
        self.reward_range, self.isolated = state["reward_range"], state["isolated"]
        function = state["function"]
        self.function_path = function if isinstance(function, str) else None
        self._function = _resolve(function) if isinstance(function, str) else function


def _resolve(path: str) -> Callable:
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"reward function {path!r} cannot be imported ({err}); give the dotted path of a "
                          "function (response, sample) -> float in a module on the Python path, e.g. "
                          "verifier.function=my_rewards.brevity") from err
    if not callable(function):
        raise ConfigError(f"reward function {path!r} is a {type(function).__name__}, not a function")
    return function


class WeightedReward:
    """The weighted sum of named reward parts.

    Args:
        parts: name -> {"verifier": any `(response, sample) -> float`, "weight": float}.
        accuracy_part: the part that says whether the problem was solved (training accuracy,
            held-out and validation pass@k score with it alone); default: the first part.

    The total is sum(weight x part), each part clipped to its own range first; its range is
    whatever those parts can sum to, so negative weights give signed rewards.
    """

    reward_range = None  # the parts are clipped, the sum is not

    def __init__(self, parts: Mapping[str, Mapping], accuracy_part: str | None = None):
        if not parts:
            raise ConfigError("verifier.parts is empty; give at least one part: {name: {verifier: ..., weight: 1.0}}")
        self.parts: dict[str, tuple[Callable, float]] = {}
        for name, spec in parts.items():
            if not isinstance(spec, Mapping) or "verifier" not in spec:
                raise ConfigError(f"verifier.parts.{name} must be a mapping with 'verifier' (and 'weight', default 1.0)")
            weight = float(spec.get("weight", 1.0))
            if not math.isfinite(weight):
                raise ConfigError(f"verifier.parts.{name}.weight must be finite, got {weight}")
            if not callable(spec["verifier"]):
                raise ConfigError(f"verifier.parts.{name}.verifier is not callable; give a _target_ that builds one")
            self.parts[str(name)] = (spec["verifier"], weight)
        self.accuracy_part = accuracy_part or next(iter(self.parts))
        if self.accuracy_part not in self.parts:
            raise ConfigError(f"verifier.accuracy_part={accuracy_part!r} is not a part; choose one of {list(self.parts)}")
        verifiers = [v for v, _ in self.parts.values()]
        # sandboxed or slow parts make the whole sum score in workers
        self.isolated = any(getattr(v, "isolated", False) for v in verifiers)
        self.draws_tests = any(getattr(v, "draws_tests", False) for v in verifiers)
        budgets = [b for b in (getattr(v, "total_timeout", None) for v in verifiers) if b is not None]
        if budgets:
            self.total_timeout = sum(budgets)

    @property
    def accuracy_verifier(self):
        """The part that grades correctness (held-out evaluation scores with it)."""
        return self.parts[self.accuracy_part][0]

    def components(self, response: str, sample: Sample, draw: str | None = None) -> dict[str, float]:
        """Each part's clipped score, by name."""
        out = {}
        for name, (verifier, _) in self.parts.items():
            takes_draw = draw is not None and getattr(verifier, "draws_tests", False)
            value = float(verifier(response, sample, draw=draw) if takes_draw else verifier(response, sample))
            out[name] = clip_reward(value, reward_range(verifier))
        return out

    def combine(self, components: Mapping[str, float]) -> float:
        return sum(weight * components[name] for name, (_, weight) in self.parts.items())

    def __call__(self, response: str, sample: Sample, draw: str | None = None) -> float:
        return self.combine(self.components(response, sample, draw))

    def extract(self, response: str, sample: Sample | None = None):
        """The correctness part's extracted answer (majority voting, summaries)."""
        extract = getattr(self.accuracy_verifier, "extract", None)
        return None if extract is None else extract(response, sample)
