"""ArcherModule: the RL step as a LightningModule (docs/design.md, "One RL step").

The module owns the policy and the frozen reference model and composes injected
components; `training_step` reads like the algorithm. Manual optimization: one RL step
makes ppo_epochs x mini-batches x phases optimizer steps.

Deliberate departures from the reference code, each a config choice: entropy can come from
the old policy (`rl.entropy_source=old`) instead of the current one; the no-grad old/ref
passes run in eval mode; the reference pass is skipped when no KL coefficient is > 0.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from archer.classifiers import NoTokenClassifier
from archer.config_checks import ConfigError
from archer.data.stream import PromptStream, StepLoader
from archer.distributed import Collectives, reduce_across_ranks
from archer.experience import Experience, collect_experience
from archer.forward import response_logprobs
from archer.group_filters import KeepAllGroups, NoOverlongHandling
from archer.lora import adapters_disabled, has_lora
from archer.monitor import class_statistics
from archer.packing import fixed_micro_batches, row_tokens, token_budget_micro_batches
from archer.rollout.base import logprob_gap
from archer.run_lifecycle import REFERENCE_FILE, RunLifecycle  # noqa: F401 - REFERENCE_FILE re-exported
from archer.schedules import RLSchedule
from archer.step_logging import rollout_metrics, text_sample
from archer.thresholds import fits_mini_batches, mini_batch_thresholds
from archer.timing import PhaseTimer
from archer.types import Sample, TokenStats
from archer.update import PolicyUpdate, StepInputs
from archer.verifiers.runner import ScoringRunner

__all__ = ["ArcherModule", "RLSchedule"]
  # RLSchedule: kept importable from here (conf/train.yaml)


class ArcherModule(RunLifecycle, L.LightningModule):
    """RLVR with swappable token classifier, constraint and advantage estimator.

    Args:
        policy: a causal LM (transformers) being trained.
        tokenizer: its tokenizer (left padding).
        template: prompt template, `template.encode(sample, tokenizer) -> list[int]`.
        prompts: which prompts each step trains on.
        rollout: rollout engine (`generate`, `sync_weights`, `temperature`, `max_new_tokens`).
        verifier, classifier, constraint, advantage: the components (docs/design.md, "Contract").
        schedule: the shape of one RL step.
        optimizer: `params -> Optimizer` (a `_partial_` config).
        scheduler: `optimizer -> LR scheduler`, or None; stepped after every optimizer step, or
            once per RL step when its `unit` is "rl_step" (archer/schedules.py).
        group_filter: dynamic sampling (`KeepAllGroups`, `DropUniformGroups`).
        overlong: overlong handling (`NoOverlongHandling`, `OverlongFilter`, `OverlongPenalty`).
        seed: the run's seed; each step's sampling is seeded from (seed, step, rank).
        reference_dtype: dtype of the frozen reference copy (an inference-only copy: bf16 halves
            its memory while the policy keeps float32 master weights); None: the policy's. Unused
            when the policy carries LoRA: its reference is its own base (archer/lora.py).
    """

    def __init__(self, policy, tokenizer, template, prompts: PromptStream, rollout, verifier, classifier, constraint,
                 advantage, schedule: RLSchedule, optimizer: Callable, scheduler: Callable | None = None,
                 group_filter=None, overlong=None, seed: int = 0, reference_dtype: torch.dtype | None = None,
                 monitor: bool = False):
        super().__init__()
        self.automatic_optimization = False
        self.policy, self.tokenizer, self.template, self.prompts = policy, tokenizer, template, prompts
        # a ScoringRunner (workers, timeouts) may be passed in place of the bare verifier
        self.rollout, self.scorer = rollout, verifier if isinstance(verifier, ScoringRunner) else ScoringRunner(verifier)
        self.classifier, self.constraint, self.advantage = classifier or NoTokenClassifier(), constraint, advantage
        self.schedule, self.seed = schedule, seed
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.group_filter, self.overlong = group_filter or KeepAllGroups(), overlong or NoOverlongHandling()
        # The frozen reference is the policy as it starts RL; skipped when no KL is used and the
        # monitor (archer/monitor.py, KL to the reference for every loss) is off. With LoRA it is
        # the base inside the policy, its adapter disabled (`reference_is_base`): no copy.
        self.monitor = monitor
        wants_reference = constraint.needs_reference or monitor
        self.reference = None
        self.reference_is_base = wants_reference and has_lora(policy)
        if wants_reference and not self.reference_is_base:
            self.reference = copy.deepcopy(policy).requires_grad_(False).eval()
            if reference_dtype is not None:
                self.reference.to(reference_dtype)
        aggregation = getattr(constraint, "aggregation", None)
        if schedule.loss_denominator == "nominal" and aggregation == "token_mean":
            raise ConfigError("rl.loss_denominator=nominal divides by the nominal number of responses, which a "
                              "token_mean aggregation does not use; set constraint.aggregation=seq_mean_token_mean "
                              "(the reference's) or rl.loss_denominator=actual")
        self.rl_step = 0
        self.last_metrics: dict[str, float] = {}
        # the run's record, carried in checkpoints: before-RL figures and seconds run before this
        # process (set by archer-train); `clock` is when this process started the run
        self.record: dict = {}
        self.clock = time.perf_counter()
        # record each phase's peak memory (memory/<phase>_peak_mb): free on CUDA (the allocator
        # counts it); on CPU it takes a sampling thread, so only benchmarks turn it on
        self.track_memory = torch.cuda.is_available()
        # why the run ended early (a SIGTERM), and the checkpoint it resumed from (for the reference)
        self.stopped_by: str | None = None
        self.resume_path: Path | None = None

    # ----------------------------------------------------------------- the RL step

    def training_step(self, step: int, batch_idx: int) -> None:
        s, timer = self.schedule, PhaseTimer(track_memory=self.track_memory)
        step_seed = self.seed * 1_000_003 + step * 7_919
        torch.manual_seed(step_seed + self.global_rank)
        rounds = itertools.count()  # generation rounds of this step (DAPO refills)
        # 1-3. rollout (this rank's share of the prompt groups), verify, dynamic sampling (+ refill), overlong
        experience, metrics = collect_experience(
            self._rank_share(self.prompts.batch(step)),
            generate=lambda prompts: self._generate(prompts, timer, step_seed),
            score=lambda texts, samples: self._score(texts, samples, timer, f"{step}/{next(rounds)}"),
            group_filter=self.group_filter,
            overlong=self.overlong,
            refill=lambda attempt, count: self.prompts.refill(step, attempt, count, self.global_rank,
                                                              self.trainer.world_size),
            max_new_tokens=self.rollout.max_new_tokens,
            pad_id=self.tokenizer.pad_token_id,
        )
        inputs = StepInputs(experience, None, None, None, None, None, self._mini_batches(experience))
        if experience is not None:
            # 4. advantages, one per response
            inputs.advantages = self.advantage(experience.rewards, experience.rollout.group_ids).to(self.device)
            # 5. no-grad pass: old log-probs and entropy (skipped when the update is one on-policy
            # step: old = current, detached); reference log-probs if a KL is used
            skip_old = self._single_on_policy_update(experience)
            with timer("old_ref"):
                inputs.old_logprobs, old_entropy = (None, None) if skip_old else self._no_grad_logprobs(self.policy, experience)
                inputs.ref_logprobs = self._reference_logprobs(experience)
                if self.monitor:
                    metrics |= self._monitor(experience, inputs.old_logprobs, old_entropy, inputs.ref_logprobs)
        # 6. classify: batch/group thresholds fitted on whole mini-batches (old policy, all ranks);
        # classes fixed now (entropy_source=old) or per micro-batch from the current policy
        inputs.thresholds = self._fit_thresholds(experience, old_entropy if experience else None, inputs)
        if experience is not None and s.entropy_source == "old":
            inputs.fixed_classes = self._classify(old_entropy, inputs.old_logprobs, experience.loss_mask,
                                                  experience.rollout.group_ids, inputs.thresholds)
        # 7. update: PPO epochs x mini-batches x constraint phases, micro-batch accumulation (every
        # rank takes part, with or without groups of its own)
        with timer("update"):
            metrics |= self._update(step, inputs)
        if experience is not None:
            metrics |= rollout_metrics(experience, inputs.advantages, sum(timer.seconds.values()))
            if experience.rollout.engine_logprobs is not None:  # vLLM: did the weight sync work?
                metrics["rollout/logprob_gap"] = logprob_gap(experience.rollout, inputs.old_logprobs)
            self._log_text_sample(step, experience, inputs.fixed_classes, inputs.thresholds)
        if self.lr_schedulers() is not None and self._lr_unit == "rl_step":
            self.lr_schedulers().step()  # the reference's unit: once per RL step, after its updates
        # 8. sync weights to the rollout engine (every rank: FSDP gathers from the wrapped root) and log
        self._sync_rollout()
        self.rl_step = step + 1
        self._log(metrics | timer.metrics(), experience)
        self._stop_if_terminated()

    def on_train_start(self) -> None:
        super().on_train_start()
        # the engine samples the first step from the policy as training starts it (a resumed run's
        # checkpoint weights, not the files it was started from); every rank takes part
        self._sync_rollout()

    def _sync_rollout(self) -> None:
        # the contract is sync_weights(policy); engines that gather FSDP shards also take the
        # module the strategy wrapped, which holds them
        if "root" in inspect.signature(self.rollout.sync_weights).parameters:
            self.rollout.sync_weights(self.policy, root=self.trainer.strategy.model)
        else:
            self.rollout.sync_weights(self.policy)

    # ----------------------------------------------------------------- pieces of the step

    def _single_on_policy_update(self, exp: Experience) -> bool:
        """True when the step makes exactly one optimizer step on fresh samples (one PPO epoch,
        one mini-batch, one phase, classes from the current policy): the old policy is then the
        current one and its log-probs are the update pass's, detached (as TRL does)."""
        s = self.schedule
        return (s.reuse_update_logprobs and s.ppo_epochs == 1 and s.mini_batch_prompts >= s.prompts_per_step and len(self.constraint.phases) == 1
                and s.entropy_source == "current" and exp.rollout.engine_logprobs is None
                and not fits_mini_batches(self.classifier))

    def _rank_share(self, prompts: list[Sample]) -> list[Sample]:
        """This rank's prompt groups: slice r of every global mini-batch, so that local
        mini-batch m of every rank together make global mini-batch m (groups never split)."""
        world, rank = self.trainer.world_size, self.global_rank
        if world == 1:
            return prompts
        size, part = self.schedule.mini_batch_prompts, self.schedule.mini_batch_prompts // world
        return [p for first in range(0, len(prompts), size) for p in prompts[first + rank * part : first + (rank + 1) * part]]

    def _generate(self, prompts: list[Sample], timer: PhaseTimer, step_seed: int):
        with timer("rollout"):
            ids = [self.template.encode(sample, self.tokenizer) for sample in prompts]
            if getattr(self.rollout, "per_prompt_seed", False):  # rank-count invariant sampling
                return self.rollout.generate(self.policy, ids, n=self.schedule.samples_per_prompt, seed=step_seed)
            return self.rollout.generate(self.policy, ids, n=self.schedule.samples_per_prompt)

    def _score(self, texts: list[str], samples: list[Sample], timer: PhaseTimer, round_key: str):
        with timer("reward"):
            # verifiers that draw tests (code) draw afresh for each response of each round and rank
            draws = [f"{self.seed}/{round_key}/{self.global_rank}/{i}" for i in range(len(texts))]
            return self.scorer(texts, samples, draws)

    def _micro_batches(self, rows: Tensor, exp: Experience) -> list[Tensor]:
        """The micro-batches of `rows`: fixed-size, or packed under `rl.micro_batch_tokens`."""
        if self.schedule.micro_batch_tokens:
            tokens = row_tokens(exp.rollout.prompt_mask, exp.rollout.response_mask)
            return token_budget_micro_batches(rows, tokens, self.schedule.micro_batch_tokens)
        return fixed_micro_batches(rows, self.schedule.micro_batch_size)

    @torch.no_grad()
    def _no_grad_logprobs(self, model: torch.nn.Module, exp: Experience) -> tuple[Tensor, Tensor]:
        was_training = model.training
        model.eval()
        rows = torch.arange(exp.rollout.num_responses)
        micro = self._micro_batches(rows, exp)
        parts = [self._forward(model, exp, m) for m in micro]
        order = torch.cat(micro)  # packed micro-batches reorder rows: put them back
        logprobs, entropy = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if not torch.equal(order, rows):
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(len(order))
            logprobs, entropy = logprobs[inverse.to(logprobs.device)], entropy[inverse.to(entropy.device)]
        model.train(was_training)
        return logprobs, entropy

    def _reference_logprobs(self, exp: Experience) -> Tensor | None:
        """Log-probs under the frozen reference: its own copy, or (LoRA) the policy's base with the
        adapter disabled; None without a KL term."""
        if self.reference_is_base:
            with adapters_disabled(self.policy):
                return self._no_grad_logprobs(self.policy, exp)[0]
        return self._no_grad_logprobs(self.reference, exp)[0] if self.reference is not None else None

    def _monitor(self, exp: Experience, logprobs: Tensor | None, entropy: Tensor | None,
                 ref_logprobs: Tensor | None) -> dict[str, float]:
        """monitor/* statistics (archer/monitor.py) of the policy that sampled this rollout."""
        if entropy is None:  # one on-policy update: the no-grad pass was skipped
            logprobs, entropy = self._no_grad_logprobs(self.policy, exp)
        stats = class_statistics(entropy, logprobs, ref_logprobs, exp.loss_mask.to(entropy.device))
        return {key: value.item() for key, value in stats.items()}

    def _forward(self, model: torch.nn.Module, exp: Experience, rows: Tensor) -> tuple[Tensor, Tensor]:
        r = exp.rollout
        groups = r.group_ids[rows] if self.schedule.share_prompt_forward else None
        return response_logprobs(model, r.prompt_ids[rows], r.prompt_mask[rows], r.response_ids[rows],
                                 r.response_mask[rows], self.rollout.temperature, groups)

    def _classify(self, entropy: Tensor, logprobs: Tensor, mask: Tensor, group_ids: Tensor,
                  thresholds: Tensor | None = None) -> Tensor:
        stats = TokenStats(entropy.detach(), logprobs.detach(), mask.to(entropy.device), group_ids.to(entropy.device),
                           thresholds)
        return self.classifier(stats)

    def _mini_batches(self, exp: Experience | None) -> list[Tensor]:
        """Row indices of each mini-batch on this rank. Every rank gets the same number (the most
        any rank has), since each mini-batch's optimizer step is a collective."""
        local_size = self.schedule.mini_batch_prompts // self.trainer.world_size
        local = -(-exp.num_groups // local_size) if exp is not None else 0
        count = int(self.collectives.max(torch.tensor(float(local)), "mini-batch count").item())
        if exp is None:
            return [torch.zeros(0, dtype=torch.long)] * count
        groups = exp.rollout.group_ids
        return [((groups >= first) & (groups < first + local_size)).nonzero().flatten()
                for first in range(0, count * local_size, local_size)]

    def _fit_thresholds(self, exp: Experience | None, entropy, inputs: StepInputs) -> Tensor | None:
        if not fits_mini_batches(self.classifier):
            return None

        def gather(values: Tensor) -> Tensor:
            return self.collectives.gather(values, "entropy thresholds")

        if exp is None:  # a rank with no groups still takes part in the gathers
            empty = torch.zeros(0, 1, device=self.device)
            return mini_batch_thresholds(self.classifier, empty, empty, empty.bool(), torch.zeros(0, dtype=torch.long),
                                         inputs.mini_batches, gather)
        return mini_batch_thresholds(self.classifier, entropy, inputs.old_logprobs, exp.loss_mask.to(entropy.device),
                                     exp.rollout.group_ids, inputs.mini_batches, gather)

    def _update(self, step: int, inputs: StepInputs) -> dict[str, float]:
        return PolicyUpdate(self, self.collectives)(step, inputs)

    @property
    def collectives(self) -> Collectives:
        """Sums, maxima and gathers across ranks, named by phase (identities on one process)."""
        strategy, world = self.trainer.strategy, self.trainer.world_size
        return Collectives(lambda t, op: strategy.reduce(t, reduce_op=op), strategy.all_gather, world,
                           self.global_rank, self.device, lambda: f"at RL step {self.rl_step}")

    def setup(self, stage: str) -> None:
        world = self.trainer.world_size
        if self.schedule.mini_batch_prompts % world:
            raise ConfigError(
                f"rl.mini_batch_prompts={self.schedule.mini_batch_prompts} must be divisible by the number of processes "
                f"({world}): each rank trains an equal share of every mini-batch's prompt groups"
            )

    # ----------------------------------------------------------------- logging

    def _log(self, metrics: dict[str, float], experience) -> None:
        batch_size = experience.rollout.num_responses if experience is not None else 1
        headline = {"train/reward", "train/accuracy"}
        metrics = reduce_across_ranks(metrics, self.collectives, self._gather_keys)
        self.last_metrics = metrics
        # One call per logger, at the RL step: Lightning's per-key self.log() costs ~0.6 ms a key,
        # which with ~50 keys was 15% of a tiny-model step. Loggers write on rank zero only.
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.rl_step)
        for key in headline & metrics.keys():  # the progress bar
            self.log(key, metrics[key], on_step=True, prog_bar=True, logger=False, batch_size=batch_size)

    def _gather_keys(self, keys: list[str]) -> list[list[str]]:
        """Every rank's metric keys (a rank whose groups were all filtered reports fewer)."""
        import torch.distributed as dist

        key_sets: list = [None] * self.trainer.world_size
        dist.all_gather_object(key_sets, keys)
        return key_sets

    def _log_text_sample(self, step: int, exp: Experience, classes: Tensor | None, thresholds: Tensor | None) -> None:
        every = self.schedule.log_text_every
        experiment = getattr(self.logger, "experiment", None)
        if not every or step % every or not hasattr(experiment, "add_text"):
            return
        if classes is None:  # classes were computed per micro-batch: classify the shown response alone
            with torch.no_grad():
                row = torch.tensor([0])
                logprobs, entropy = self._forward(self.policy, exp, row)
                classes = self._classify(entropy, logprobs, exp.loss_mask[row], exp.rollout.group_ids[row],
                                         None if thresholds is None else thresholds[:1])
        experiment.add_text("sample/response", text_sample(exp, classes, self.tokenizer), global_step=step)

    # ----------------------------------------------------------------- Lightning plumbing

    def train_dataloader(self) -> StepLoader:
        return StepLoader(lambda: self.rl_step)

    @property
    def _lr_unit(self) -> str:
        """What one scheduler step is: an optimizer step, or an RL step (the reference)."""
        scheduler = self.lr_schedulers()
        return getattr(scheduler, "unit", "optimizer_step") if scheduler is not None else "optimizer_step"

    def configure_optimizers(self):
        optimizer = self.optimizer_factory([p for p in self.policy.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.reference is not None:
            self.reference.eval()  # frozen: never dropout
        return self
