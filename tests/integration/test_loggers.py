"""Every logger choice (conf/logger) completes a run, writes its files under the run folder, and
summary.json says where; wandb runs offline without a key and without touching the network."""

from __future__ import annotations

import csv
import http.server
import json
import threading

import pytest
from omegaconf import OmegaConf

from archer.config_checks import ConfigError
from archer.loggers import logger_specs, wandb_mode
from archer.summarize import write_report
from archer.train import train
from tests.integration.conftest import FAST, compose_train

# the loggers chosen by each test; FAST's own logger=csv is dropped
BASE = [o for o in FAST if not o.startswith("logger=")]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers and records every request: the W&B API and any proxied connection point here."""

    seen: list[str] = []

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_CONNECT = _record

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def no_wandb_key(monkeypatch, tmp_path, recorder):
    """No W&B key anywhere, and every W&B or proxied request lands in `recorder` (the list it returns)."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    address = f"http://127.0.0.1:{recorder.server_port}"
    monkeypatch.setenv("WANDB_BASE_URL", address)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, address)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    _Recorder.seen.clear()
    return _Recorder.seen


@pytest.fixture
def local_mlflow(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_csv_alone_writes_metrics_and_summarize_reads_them(run, tmp_path):
    summary, run_dir = run(["logger=csv"], base=BASE)
    metrics = run_dir / "csv" / "metrics.csv"
    assert summary["loggers"] == {"csv": str(metrics)} and summary["metrics_csv"] == str(metrics)
    assert summary["tensorboard"] is None and not (run_dir / "tensorboard").exists()
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/reward")]
    assert [int(r["step"]) for r in rows] == [1, 2]  # one row per RL step
    assert json.loads((run_dir / "summary.json").read_text())["loggers"] == summary["loggers"]
    # no TensorBoard events: archer-summarize takes the curves from the CSV
    written = write_report([run_dir], tmp_path / "report", plots=False)
    assert written["runs"] == 1
    runs = list(csv.DictReader((tmp_path / "report" / "runs.csv").open()))
    assert float(runs[0]["generated_tokens"]) > 0


def test_wandb_runs_offline_without_a_key_and_without_network(run, no_wandb_key):
    summary, run_dir = run(["logger=wandb"], base=BASE)
    offline = summary["loggers"]["wandb"]
    assert offline.startswith(str(run_dir / "wandb" / "offline-run-"))
    records = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(records) == 1 and str(records[0].parent) == offline
    assert b"train/reward" in records[0].read_bytes()  # the metrics are in W&B's run file
    # the CSV is kept beside it: what the summary and plots read
    assert summary["loggers"]["csv"] == summary["metrics_csv"] and (run_dir / "csv" / "metrics.csv").is_file()
    assert no_wandb_key == []  # nothing asked the W&B server (or anything through a proxy)


def test_mlflow_logs_to_a_local_store_in_the_run_folder(run, local_mlflow):
    summary, run_dir = run(["logger=mlflow", "validation.every_n_steps=1", "heldout.max_problems=4",
                            "validation.max_problems=4", "validation.k=2"], base=BASE)
    where = summary["loggers"]["mlflow"]
    assert where["tracking_uri"] == (run_dir / "mlruns").resolve().as_uri()
    logged = run_dir / "mlruns" / where["experiment_id"] / where["run_id"]
    reward = (logged / "metrics" / "train" / "reward").read_text().split("\n")
    assert len([line for line in reward if line.strip()]) == 2  # one value per RL step
    # MLflow refuses '@': the validation metrics arrive as pass_at_k
    assert (logged / "metrics" / "val" / "heldout" / "pass_at_2").is_file()
    assert "status: 3" in (logged / "meta.yaml").read_text()  # RunStatus.FINISHED: the run was ended


def test_several_loggers_at_once(run, no_wandb_key, local_mlflow):
    summary, run_dir = run(["logger=[tensorboard,wandb,mlflow]"], base=BASE)
    assert set(summary["loggers"]) == {"tensorboard", "wandb", "mlflow", "csv"}
    assert summary["tensorboard"] == summary["loggers"]["tensorboard"] == str(run_dir / "tensorboard")
    assert list((run_dir / "tensorboard").glob("events.out.tfevents*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (run_dir / "mlruns" / summary["loggers"]["mlflow"]["experiment_id"]).is_dir()
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert no_wandb_key == []


def test_wandb_mode_offline_unless_a_key_is_set_up(no_wandb_key, monkeypatch, tmp_path):
    assert wandb_mode("auto") == "offline"
    with pytest.raises(ConfigError, match="logger.wandb.mode=online needs a W&B API key"):
        wandb_mode("online")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password key123\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_mode("auto") == "online"  # `wandb login` wrote a key for this host
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode("auto") == "disabled"  # the user's environment wins
    with pytest.raises(ConfigError, match="logger.wandb.mode must be one of"):
        wandb_mode("dryrun")


@pytest.mark.parametrize("logger, extra", [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_missing_package_names_the_extra_before_any_work(monkeypatch, tmp_path, logger, extra):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == logger else real(name, *a))
    with pytest.raises(ConfigError, match=rf'logger.{logger} needs .* pip install "archer-rlvr\[{extra}\]"'):
        train(compose_train([*BASE, f"logger=[csv,{logger}]"]), tmp_path)


def test_an_old_style_logger_config_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"logger=\[tensorboard,wandb\]"):
        logger_specs(OmegaConf.create({"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "csv"}))
