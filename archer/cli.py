"""What the command-line entry points share."""

from __future__ import annotations

import os
import sys

from archer.config_checks import ConfigError
from archer.data import DataError


def run_or_exit(function, *args):
    """`function(*args)`; bad input (a config value, a data row) ends the process with exit
    status 2 and the one-line message that names the key or file and the fix."""
    try:
        return function(*args)
    except (ConfigError, DataError) as err:
        print(f"[archer] error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        # a config interpolation (e.g. a model fetched on first use) wraps the error it raised
        if isinstance(err.__cause__, (ConfigError, DataError)):
            print(f"[archer] error: {err.__cause__}", file=sys.stderr)
            sys.exit(2)
        raise


def _register_resolvers() -> None:
    from archer.pretrained import register_resolver

    register_resolver()


_register_resolvers()  # configs may name fetched models (`${archer_model:smollm2}`, conf/model/smollm2.yaml)

# Configs name the user's own code by dotted path (`_target_: my_rewards.brevity`, a subclassed
# constraint): the working directory is importable, as under `python -m`, which console scripts
# like archer-train do not do. Appended last, so it never shadows an installed package.
if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())
