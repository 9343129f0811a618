"""Rows of a Hugging Face hub dataset, failing fast and clearly where the Hub cannot be reached.

`datasets.load_dataset` retries for tens of seconds when the network is down, and its error
does not say how to get the data onto an offline machine. So: with `HF_HUB_OFFLINE` (or
`HF_DATASETS_OFFLINE`, `TRANSFORMERS_OFFLINE`) set, only the local cache is tried; otherwise a
connection to the Hub is probed for a few seconds first. Either failure raises a `DataError`
that says how to fetch the dataset on a connected machine and point archer at the copy.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from archer.data.errors import DataError

PROBE_SECONDS = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether the environment forbids the Hub (read now, not when `datasets` was imported)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").upper() in _TRUE for name in names)


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within `timeout` seconds.

    It runs in a daemon thread because name resolution ignores socket timeouts and can hang."""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    done, opened = threading.Event(), []

    def connect() -> None:
        try:
            with socket.create_connection((url.hostname or "", port), timeout=timeout):
                opened.append(True)
        except OSError:
            pass
        finally:
            done.set()

    threading.Thread(target=connect, daemon=True).start()
    done.wait(timeout)
    return bool(opened)


def how_to_copy(hub_id: str, hub_config: str | None, split: str) -> str:
    """The instructions for using `hub_id` where the Hub is out of reach."""
    config = f", {hub_config!r}" if hub_config else ""
    stem = f"{hub_id.split('/')[-1]}_{split}"
    return (f"on a machine with network run: python -c \"import datasets; datasets.load_dataset({hub_id!r}{config}, "
            f"split={split!r}).to_parquet('{stem}.parquet')\" (or .save_to_disk('{stem}')), copy the file or folder "
            f"here and set data.source.train_path (or heldout_path) to it")


def load_hub_rows(hub_id: str, hub_config: str | None, split: str) -> list[dict]:
    """The rows of split `split` of hub dataset `hub_id` (configuration `hub_config`)."""
    where = f"{hub_id}: no such local file or folder, so it was read as a Hugging Face hub dataset id"
    if not hub_offline() and not hub_reachable():
        raise DataError(f"{where}, but the Hub cannot be reached from this machine within {PROBE_SECONDS:.0f}s; "
                        f"{how_to_copy(hub_id, hub_config, split)}. If it is in your datasets cache, set "
                        "HF_HUB_OFFLINE=1 to use the cached copy")
    try:
        import datasets
    except ImportError as err:
        raise DataError(f"{where}, which needs the datasets package: pip install datasets") from err
    try:
        loaded = datasets.load_dataset(hub_id, hub_config, split=split)
    except ConnectionError as err:  # offline mode and not in the cache (datasets' OfflineModeIsEnabled is one)
        raise DataError(f"{where}, but it is not in the local datasets cache and the Hub is off limits "
                        f"(offline mode, or no network: {err}); {how_to_copy(hub_id, hub_config, split)}") from err
    except Exception as err:  # unknown id, gated dataset, unknown config or split: datasets' own words
        raise DataError(f"{where}, and loading it failed: {err}. Check the id, data.source.hub_config and "
                        "data.source.train_split / heldout_split; if you meant a local path, it does not exist") from err
    return loaded.to_list()
