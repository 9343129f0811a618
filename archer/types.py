"""Frozen dataclasses passed between components (docs/design.md, "Contract").

Shapes use N for sequences (responses) in a batch and T for response tokens (right-padded).
Every mask is a bool tensor whose name says what is True.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where tensors are made, so scoring workers start fast
    from torch import Tensor


@dataclass(frozen=True)
class Sample:
    """One task instance.

    Attributes:
        id: unique within its source.
        problem: the text the model is asked to solve (before any prompt template).
        answer: what the verifier needs: a LaTeX string for math, a name->role mapping for
            logic, a test spec for code, an int for the synthetic arithmetic task.
        info: any other fields of the source row (kept for inspection and verifiers; for verl
            rows `reward_model`, `extra_info`, `data_source`, ...).
        messages: the prompt as chat messages `[{"role", "content"}, ...]` when the source gives
            one (verl's form); templates then use it as it is instead of `problem` + instruction.
            None: the prompt is `problem`.
    """

    id: str
    problem: str
    answer: Any
    info: dict = field(default_factory=dict)
    messages: list[dict] | None = None


@dataclass(frozen=True)
class TokenStats:
    """Per-token statistics a classifier splits on.

    Attributes:
        entropy: float [N, T], entropy of the policy's next-token distribution at each
            response position (logits divided by the sampling temperature).
        logprobs: float [N, T], log-probability of the sampled token.
        response_mask: bool [N, T], True on real response tokens (False on padding).
        group_ids: optional long [N], the prompt group of each response (for group-level
            classifiers); None when the caller has no groups.
        thresholds: optional float [N], each row's entropy threshold computed over a wider set
            than these rows (the trainer fits batch- and group-level quantiles on the whole
            mini-batch across micro-batches and ranks); None: the classifier uses these rows.
    """

    entropy: Tensor
    logprobs: Tensor
    response_mask: Tensor
    group_ids: Tensor | None = None
    thresholds: Tensor | None = None


@dataclass(frozen=True)
class PolicyBatch:
    """Everything a constraint needs to compute the loss of one micro-batch.

    Attributes:
        logprobs: float [N, T], log-probs of the sampled tokens under the current policy
            (with grad).
        old_logprobs: float [N, T], the same under the policy that generated the rollout.
        ref_logprobs: float [N, T] under the frozen reference model, or None (no KL).
        advantages: float [N], one advantage per response, broadcast over its tokens.
        response_mask: bool [N, T], True on tokens that take part in the loss.
        high_entropy: bool [N, T], True on the high-entropy (reasoning) class, always inside
            response_mask; None when no classifier ran.
        num_tokens: number of loss tokens in the whole mini-batch across micro-batches and
            ranks; None means this batch alone.
        num_sequences: number of sequences in the whole mini-batch; None: this batch alone.
        entropy: optional float [N, T], current-policy entropy (with grad), for per-class
            metrics and the entropy bonus (`constraint.entropy_coef`).
        rollout_weights: optional float [N, T], per-token weights of the policy-gradient term
            (truncated importance sampling between the rollout engine and the trainer); None: 1.
    """

    logprobs: Tensor
    old_logprobs: Tensor
    ref_logprobs: Tensor | None
    advantages: Tensor
    response_mask: Tensor
    high_entropy: Tensor | None = None
    num_tokens: int | float | Tensor | None = None
    num_sequences: int | float | Tensor | None = None
    entropy: Tensor | None = None
    rollout_weights: Tensor | None = None


# A metric key with this suffix holds the weight of the metric of the same name (the tokens or
# responses its mean is over); see archer/distributed.py.
WEIGHT = "@weight"


@dataclass(frozen=True)
class LossOutput:
    """A constraint's result.

    Attributes:
        loss: scalar tensor with grad, already divided by the global denominators, so that
            summing it over micro-batches gives the mini-batch loss.
        metrics: detached scalar tensors, namespaced (`loss/clipfrac_high`, `loss/kl_low`); a
            mean may come with `"<key>@weight"`, what it averages over, for exact reduction over
            micro-batches and ranks.
    """

    loss: Tensor
    metrics: dict[str, Tensor]


@dataclass(frozen=True)
class RolloutBatch:
    """What a rollout engine returns: prompts and their sampled responses.

    Row i of every tensor is one response; responses of the same prompt are consecutive.

    Attributes:
        prompt_ids: long [N, P], left-padded prompt tokens.
        prompt_mask: bool [N, P], True on real prompt tokens.
        response_ids: long [N, T], right-padded response tokens (EOS included when emitted).
        response_mask: bool [N, T], True on real response tokens.
        truncated: bool [N], True when the response hit the length limit without stopping.
        group_ids: long [N], index of the prompt each response answers.
        texts: decoded responses (special tokens removed), length N.
        engine_logprobs: optional float [N, T], the rollout engine's own log-probs of the
            sampled tokens (vLLM), compared with the trainer's as `rollout/logprob_gap`.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    truncated: Tensor
    group_ids: Tensor
    texts: list[str]
    engine_logprobs: Tensor | None = None

    @property
    def num_responses(self) -> int:
        return self.response_ids.shape[0]

    def select(self, rows: Tensor) -> RolloutBatch:
        """Keep the given rows (long indices or a bool mask over N)."""
        import torch

        if rows.dtype == torch.bool:
            rows = rows.nonzero(as_tuple=True)[0]
        index = rows.tolist()
        return RolloutBatch(
            prompt_ids=self.prompt_ids[rows],
            prompt_mask=self.prompt_mask[rows],
            response_ids=self.response_ids[rows],
            response_mask=self.response_mask[rows],
            truncated=self.truncated[rows],
            group_ids=self.group_ids[rows],
            texts=[self.texts[i] for i in index],
            engine_logprobs=None if self.engine_logprobs is None else self.engine_logprobs[rows],
        )
