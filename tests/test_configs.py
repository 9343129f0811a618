"""Every file of every component config group composes and instantiates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from archer.interfaces import AdvantageEstimator, Constraint, TokenClassifier

CONF = Path(__file__).resolve().parents[1] / "conf"
PROTOCOLS = {"classifier": TokenClassifier, "constraint": Constraint, "advantage": AdvantageEstimator}


def configs(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group, name", [(g, n) for g in PROTOCOLS for n in configs(g)])
def test_component_config_composes_and_instantiates(group, name):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name=f"{group}/{name}")
    component = instantiate(cfg[group])
    assert isinstance(component, PROTOCOLS[group])


def test_groups_are_not_empty():
    for group in PROTOCOLS:
        assert len(configs(group)) >= 3, group


def _compose_train(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="train", overrides=overrides)


PAPER_EXPERIMENTS = [name for name in configs("experiment") if name.endswith("_1_5b")]


def test_every_experiment_is_a_paper_one_or_a_cpu_one():
    assert sorted(configs("experiment")) == sorted([*PAPER_EXPERIMENTS, "smollm2_math", "testbed"])


@pytest.mark.parametrize("experiment", PAPER_EXPERIMENTS)
def test_experiment_files_compose_and_require_a_model_path(experiment):
    from omegaconf import OmegaConf

    cfg = _compose_train([f"experiment={experiment}"])
    assert OmegaConf.is_missing(cfg.model, "path")  # GPU users must name their model
    cfg = _compose_train([f"experiment={experiment}", "model.path=/models/x", "data.source.train_path=/d.jsonl"])
    assert cfg.rl.prompts_per_step == 64 and cfg.rl.samples_per_prompt == 16 and cfg.rl.ppo_epochs == 3
    assert cfg.optimizer.lr == 1e-6
    for key in ("verifier", "classifier", "constraint", "advantage", "filter", "overlong"):
        instantiate(cfg[key])


def test_every_group_file_composes_into_the_train_config():
    for group in ("model", "data", "rollout", "verifier", "filter", "overlong", "trainer", "logger", "debug"):
        for name in configs(group):
            cfg = _compose_train([f"{group}={name}"])
            assert group == "debug" or cfg[group] is not None


def test_dapo_baseline_matches_the_paper_table():
    cfg = _compose_train(["experiment=dapo_code_1_5b"])
    constraint = instantiate(cfg.constraint)
    assert (constraint.eps_low, constraint.eps_high, constraint.kl_coef) == (0.2, 0.22, 0.0)
    assert cfg.rl.mini_batch_prompts == 16 and cfg.overlong._target_.endswith("OverlongFilter")


@pytest.mark.parametrize("suite", [name for name in configs("suite") if name != "files"])
def test_eval_suites_compose_name_real_benchmarks_and_build_their_components(suite):
    from archer.data import BENCHMARKS, benchmark_kind

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="eval", overrides=[f"suite={suite}"])
    assert cfg.suite.benchmarks and 0 < cfg.suite.sampling.temperature
    for name, spec in cfg.suite.benchmarks.items():
        assert name in BENCHMARKS and spec.k >= 1
        kind = cfg.kinds[benchmark_kind(name)]
        assert callable(instantiate(kind.verifier)) and hasattr(instantiate(kind.template), "encode")


def test_paper_math_suite_matches_the_paper():
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="eval", overrides=["suite=paper_math"])
    ks = {name: spec.k for name, spec in cfg.suite.benchmarks.items()}
    assert ks == {"aime2024": 64, "aime2025": 64, "amc": 64, "math500": 4, "minerva": 8, "olympiadbench": 4}
    assert cfg.suite.sampling.temperature == 0.8 and cfg.suite.sampling.top_p == 1.0


def test_reasoning_class_epsilon_is_symmetric_in_the_sweep_and_the_math_experiment():
    """The follow-up's "eps_high 0.4" is the high-entropy class's epsilon on both sides, as the
    reference's 0.5/0.5: every file that sets it moves both clip bounds."""
    for name, value in [("dual_token_eps_high_02", 0.2), ("dual_token_eps_high_03", 0.3), ("dual_token_eps_high_04", 0.4)]:
        constraint = instantiate(_compose_train([f"constraint={name}"]).constraint)
        assert (constraint.high.eps_low, constraint.high.eps_high) == (value, value), name
    constraint = instantiate(_compose_train(["experiment=archer_math_1_5b"]).constraint)
    assert (constraint.high.eps_low, constraint.high.eps_high) == (0.4, 0.4)


def test_experiment_files_follow_the_reference_training_semantics():
    for experiment in ("archer_math_1_5b", "archer_code_1_5b", "dapo_code_1_5b"):
        cfg = _compose_train([f"experiment={experiment}"])
        assert instantiate(cfg.constraint).aggregation == "seq_mean_token_mean"
        assert cfg.rl.loss_denominator == "nominal"
        assert (cfg.scheduler.unit, cfg.scheduler.from_zero, cfg.scheduler.warmup_steps) == ("rl_step", True, 10)
        assert cfg.model.master_dtype == "float32" and cfg.model.dtype == "bfloat16"


@pytest.mark.parametrize("experiment", ["archer_code_1_5b", "archer_math_1_5b", "dapo_code_1_5b"])
def test_paper_experiments_run_vllm_with_checkpointing_and_a_token_budget(experiment, monkeypatch):
    """What lets 32K-token responses fit (docs/memory.md): vLLM rollouts, activation
    checkpointing, micro-batches packed under a token budget that holds one whole response."""
    from tests import fake_vllm

    cfg = _compose_train([f"experiment={experiment}", "model.path=/models/x", "data.source.train_path=/d.jsonl"])
    assert cfg.rollout._target_ == "archer.rollout.vllm.VLLMRolloutEngine"
    assert cfg.model.gradient_checkpointing is True
    schedule = instantiate(cfg.rl)
    assert schedule.micro_batch_tokens >= cfg.rollout.max_new_tokens == 32768
    fake_vllm.install(monkeypatch)  # the engine's construction checks its settings; no GPU needed
    engine = instantiate(cfg.rollout)
    assert engine.model_path == "/models/x" and engine.max_new_tokens == 32768 and engine.sleep_between_steps


def test_the_smollm2_experiment_and_its_eval_suite_grade_the_same_split_the_same_way():
    """archer-eval suite=smollm2_math must measure what the run's held-out figures measure."""
    train = _compose_train(["experiment=smollm2_math"])
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        evaluation = compose(config_name="eval", overrides=["suite=smollm2_math"])
    assert list(evaluation.suite.benchmarks) == [train.data.source.heldout] == ["svamp1_test"]
    assert evaluation.suite.benchmarks.svamp1_test.k == train.heldout.samples_per_problem
    assert evaluation.suite.sampling.temperature == train.heldout.temperature == train.rollout.temperature
    assert evaluation.suite.sampling.max_new_tokens == train.rollout.max_new_tokens
    assert evaluation.kinds.math.template.instruction == train.data.template.instruction
    assert evaluation.kinds.math.template.examples == train.data.template.examples  # the same few-shot turns
    assert evaluation.kinds.math.verifier.answer_reader == train.verifier.answer_reader
    assert train.heldout.max_problems >= 232  # the whole held-out split


def test_the_files_suite_needs_paths():
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="eval", overrides=["suite=files"])
    assert OmegaConf.is_missing(cfg.suite, "paths") and cfg.suite.kind in cfg.kinds


def test_a_few_shot_example_that_is_a_held_out_problem_is_refused_by_key():
    from archer.config_checks import ConfigError
    from archer.data import load_benchmark
    from archer.train import build_components

    held_out = load_benchmark("svamp1_test")[5].problem
    cfg = _compose_train(["experiment=smollm2_math"])
    build_components(cfg)  # the committed examples come from the training split
    cfg.data.template.examples = [{"problem": held_out + " ", "response": "1 + 1 = 2. The answer is 2."}]
    with pytest.raises(ConfigError, match=r"data.template.examples\[0\] is a held-out problem"):
        build_components(cfg)
