"""The run's experiment loggers (conf/logger), all anchored in the run folder.

`cfg.logger` maps a name to a logger config: `logger=tensorboard` gives `{tensorboard: {...}}`,
`logger=[tensorboard,wandb]` gives both (each file in conf/logger is one key, so a list merges).
Every logger is built with `save_dir=<run folder>`. A CSV of the metrics (`<run>/csv/metrics.csv`)
is kept whatever the choice: it is cheap, needs no package and is what `archer-summarize` reads,
so nothing after training depends on a logger having a local folder.

Where each logger wrote goes into summary.json (`RunLoggers.locations`).
"""

from __future__ import annotations

import importlib.util
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from archer.config_checks import ConfigError, check_choice

# the CSV every run keeps: <run>/csv/metrics.csv, as conf/logger/csv.yaml writes it
CSV_NAME = "csv"
METRICS_FILE = "metrics.csv"  # the file name Lightning's CSVLogger writes in its log_dir
WANDB_MODES = ("auto", "online", "offline", "disabled")

# logger targets that need an optional package: target -> (module, extra of archer-rlvr)
OPTIONAL_PACKAGES = {
    "archer.loggers.wandb_logger": ("wandb", "wandb"),
    "lightning.pytorch.loggers.WandbLogger": ("wandb", "wandb"),
    "archer.loggers.mlflow_logger": ("mlflow", "mlflow"),
    "lightning.pytorch.loggers.MLFlowLogger": ("mlflow", "mlflow"),
}


def logger_specs(logger_cfg) -> dict[str, DictConfig]:
    """`cfg.logger` as name -> config; a clear error for any other shape (e.g. an old-style
    single-logger file without its name key)."""
    if logger_cfg is None:
        return {}
    how = "choose loggers from conf/logger: logger=tensorboard, or several: logger=[tensorboard,wandb]"
    if not isinstance(logger_cfg, DictConfig) or "_target_" in logger_cfg:
        raise ConfigError(f"logger must map a name to a logger config ({{csv: {{_target_: ...}}}}); {how}")
    for name, spec in logger_cfg.items():
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            raise ConfigError(f"logger.{name} must be a logger config with a _target_; {how}")
    return dict(logger_cfg.items())


def check_loggers(logger_cfg) -> None:
    """Fail before any training work when a chosen logger's package is not installed."""
    for name, spec in logger_specs(logger_cfg).items():
        module, extra = OPTIONAL_PACKAGES.get(spec._target_, (None, None))
        if module is not None:
            require(module, extra, f"logger.{name}")


def require(module: str, extra: str, key: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{key} needs the `{module}` package, which is not installed: "
                          f'pip install "archer-rlvr[{extra}]" (or choose another logger, e.g. logger=tensorboard)')


class RunLoggers:
    """The chosen loggers plus the always-kept metrics CSV, and where each one wrote."""

    def __init__(self, logger_cfg, run_dir: Path):
        check_loggers(logger_cfg)
        self.run_dir = Path(run_dir)
        self.by_name: dict[str, Logger] = {}
        for name, spec in logger_specs(logger_cfg).items():
            try:
                self.by_name[name] = instantiate(spec, save_dir=str(self.run_dir))
            except InstantiationException as err:
                root = err.__cause__ or err
                if isinstance(root, ConfigError):
                    raise root from None
                raise ConfigError(f"could not build logger.{name} ({spec._target_}): {root}") from err
        if not any(isinstance(lg, CSVLogger) for lg in self.by_name.values()):
            key = CSV_NAME if CSV_NAME not in self.by_name else "metrics_csv"
            # every row written as it comes (Lightning's default waits for 100 steps): a long run
            # shows its progress and a killed one keeps its curve
            self.by_name[key] = CSVLogger(save_dir=str(self.run_dir), name=CSV_NAME, version="", flush_logs_every_n_steps=1)

    @property
    def lightning(self) -> list[Logger]:
        """For `Trainer(logger=...)`; TensorBoard first, as the module's text samples go to the first logger
        that can take them."""
        return sorted(self.by_name.values(), key=lambda lg: not isinstance(lg, TensorBoardLogger))

    @property
    def metrics_csv(self) -> Path:
        """The metrics CSV every run has (the first CSV logger's)."""
        csv = next(lg for lg in self.by_name.values() if isinstance(lg, CSVLogger))
        return Path(csv.log_dir) / METRICS_FILE

    @property
    def tensorboard_dir(self) -> str | None:
        board = next((lg for lg in self.by_name.values() if isinstance(lg, TensorBoardLogger)), None)
        return str(Path(board.log_dir)) if board is not None else None

    def locations(self) -> dict[str, object]:
        """name -> where that logger wrote: a file or folder, a URL, or MLflow's store and run."""
        return {name: location(lg) for name, lg in self.by_name.items()}

    def close(self) -> None:
        """End wandb's run: its files are complete, and a later run in this process starts a new one
        (Lightning's WandbLogger would otherwise attach to the still-open run)."""
        for lg in self.by_name.values():
            if isinstance(lg, WandbLogger) and getattr(lg, "_experiment", None) is not None:
                finish = getattr(lg._experiment, "finish", None)
                if finish is not None:
                    finish()


def location(lg: Logger) -> object:
    """Where one logger wrote, as summary.json reports it."""
    if isinstance(lg, CSVLogger):
        return str(Path(lg.log_dir) / METRICS_FILE)
    if isinstance(lg, TensorBoardLogger):
        return str(Path(lg.log_dir))
    if isinstance(lg, WandbLogger):
        run = lg.experiment
        if getattr(run, "offline", False):
            return str(run.settings.sync_dir)
        return getattr(run, "url", None)
    if isinstance(lg, MLFlowLogger):
        return {"tracking_uri": lg._tracking_uri, "experiment_id": lg.experiment_id, "run_id": lg.run_id}
    return getattr(lg, "log_dir", None) or getattr(lg, "save_dir", None)


# ----------------------------------------------------------------- factories of conf/logger


def wandb_logger(save_dir: str, project: str = "archer", name: str | None = None, mode: str = "auto",
                 entity: str | None = None, tags: list[str] | None = None, **options) -> WandbLogger:
    """Lightning's WandbLogger writing under `<run>/wandb`, offline unless a W&B key is set up."""
    require("wandb", "wandb", "logger.wandb")
    resolved = wandb_mode(mode)
    if mode == "auto" and resolved == "offline" and not os.environ.get("WANDB_MODE"):
        print(f"[archer] wandb: no API key (WANDB_API_KEY or `wandb login`): logging offline under {save_dir}/wandb; "
              "upload later with `wandb sync <that offline-run folder>`", flush=True)
    # `mode` goes to wandb.init; Lightning's own `offline=True` would set WANDB_MODE for the whole process
    logger = WandbLogger(save_dir=save_dir, project=project, name=name or Path(save_dir).name, entity=entity,
                         tags=list(tags) if tags else None, mode=resolved, **options)
    if logger._wandb_init.get("anonymous") is None:  # wandb >= 0.2x warns about the key even when unset
        logger._wandb_init.pop("anonymous", None)
    return logger


def wandb_mode(mode: str) -> str:
    """auto: $WANDB_MODE if set, else online when a key is available, else offline."""
    check_choice("logger.wandb.mode", mode, WANDB_MODES)
    if mode == "auto":
        return os.environ.get("WANDB_MODE") or ("online" if wandb_key_available() else "offline")
    if mode == "online" and not wandb_key_available():
        raise ConfigError("logger.wandb.mode=online needs a W&B API key: set WANDB_API_KEY or run `wandb login`, "
                          "or use logger.wandb.mode=offline (sync later with `wandb sync`)")
    return mode


def wandb_key_available() -> bool:
    """A key in the environment or in the netrc file `wandb login` writes; no network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return host is not None and path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class ArcherMLFlowLogger(MLFlowLogger):
    """MLflow refuses '@' in metric names: pass@k becomes pass_at_k (Lightning would drop the '@',
    warning once a key)."""

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics({key.replace("@", "_at_"): value for key, value in metrics.items()}, step=step)


def mlflow_logger(save_dir: str, experiment_name: str = "archer", run_name: str | None = None,
                  tracking_uri: str | None = None, tags: dict | None = None, **options) -> MLFlowLogger:
    """Lightning's MLFlowLogger; by default a local file store in `<run>/mlruns` (no server)."""
    require("mlflow", "mlflow", "logger.mlflow")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (Path(save_dir) / "mlruns").resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 refuses file stores unless opted in; a database store needs SQLAlchemy, which
        # mlflow-skinny lacks. A local store sends nothing anywhere: no usage telemetry either.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return ArcherMLFlowLogger(experiment_name=experiment_name, run_name=run_name or Path(save_dir).name,
                              tracking_uri=uri, tags=OmegaConf.to_container(tags) if isinstance(tags, DictConfig)
                              else tags, **options)
