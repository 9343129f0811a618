"""Benchmark evaluation: sample K responses per problem, score them, summarise per benchmark.

Used by `archer-eval` (archer/evaluate.py), by validation during training
(archer/callbacks.py, `ValidationLoop`), and for the held-out pass@1 archer-train reports
before and after RL (`evaluate_heldout`: one seeded batch, no chunks). Problems are generated in fixed chunks, each
seeded from (seed, benchmark, chunk index) alone, so the responses of a chunk do not depend
on which chunks ran before: an interrupted evaluation resumes chunk by chunk from
`samples.jsonl` and ends with the same results as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from archer.metrics import avg_at_k, bootstrap_ci, length_stats, majority_correct, pass_at_k, repetition_ratio
from archer.types import Sample
from archer.verifiers.runner import ScoringRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One scored response, one line of `samples.jsonl`."""

    benchmark: str
    problem_id: str
    sample_index: int
    chunk: int
    prompt: str
    response: str
    answer: str | None
    score: float
    finish_reason: str  # "stop" or "length"
    response_tokens: int
    repetition: float


def chunk_seed(seed: int, benchmark: str, chunk: int) -> int:
    """A sampling seed that depends only on (seed, benchmark, chunk)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{benchmark}/{chunk}".encode()).digest()[:6], "big")


def generate_chunk(policy, tokenizer, template, engine, scorer, verifier, benchmark: str, problems: list[Sample],
                   chunk: int, k: int, seed: int) -> list[Record]:
    """Sample `k` responses for each problem of one chunk and score them."""
    prompt_ids = [template.encode(problem, tokenizer) for problem in problems]
    rollout = seeded_generate(engine, policy, prompt_ids, k, chunk_seed(seed, benchmark, chunk))
    rows = [problems[g] for g in rollout.group_ids.tolist()]
    scores, _ = scorer(rollout.texts, rows)
    lengths = rollout.response_mask.sum(-1).tolist()
    records = []
    for i, (sample, text) in enumerate(zip(rows, rollout.texts)):
        tokens = rollout.response_ids[i, : lengths[i]].tolist()
        records.append(Record(
            benchmark=benchmark, problem_id=sample.id, sample_index=i % k, chunk=chunk,
            prompt=template.text(sample, tokenizer) if i % k == 0 else "", response=text,
            answer=_extract(verifier, text, sample), score=float(scores[i]),
            finish_reason="length" if bool(rollout.truncated[i]) else "stop",
            response_tokens=int(lengths[i]), repetition=repetition_ratio(tokens, 20),
        ))
    return records


def seeded_generate(engine, policy, prompt_ids: list[list[int]], k: int, seed: int):
    """`k` responses per prompt, seeded by `seed` alone: through the global torch RNG, and given
    to engines that seed each request themselves (`per_prompt_seed`, e.g. vLLM's, whose
    sampling the torch RNG does not reach)."""
    torch.manual_seed(seed)
    if getattr(engine, "per_prompt_seed", False):
        return engine.generate(policy, prompt_ids, n=k, seed=seed)
    return engine.generate(policy, prompt_ids, n=k)


def _extract(verifier, response: str, sample: Sample) -> str | None:
    extract = getattr(verifier, "extract", None)
    if extract is None:
        return None
    try:
        return extract(response, sample)
    except Exception:  # extraction is for inspection only; scoring already happened
        return None


def summarize(records: list[Record], k: int, verifier=None, bootstrap_samples: int = 1000, seed: int = 0) -> dict:
    """avg@k, pass@k (unbiased, with k = samples per problem), maj@k where answers compare,
    a bootstrap interval of avg@k over problems (None with bootstrap_samples=0), lengths, truncation and repetition."""
    by_problem: dict[str, list[Record]] = {}
    for record in records:
        by_problem.setdefault(record.problem_id, []).append(record)
    per_problem = [sorted(rs, key=lambda r: r.sample_index) for rs in by_problem.values()]
    if not per_problem:
        raise ValueError("summarize needs at least one record")
    avg = [avg_at_k([r.score for r in rs]) for rs in per_problem]
    passed = [pass_at_k(len(rs), sum(r.score == 1.0 for r in rs), min(k, len(rs))) for rs in per_problem]
    # bootstrap_samples=0 asks for no interval (and costs nothing)
    low, high = bootstrap_ci(avg, samples=bootstrap_samples, seed=seed) if bootstrap_samples > 0 else (None, None)
    result = {
        "problems": len(per_problem),
        "k": k,
        f"avg@{k}": sum(avg) / len(avg),
        f"pass@{k}": sum(passed) / len(passed),
        f"avg@{k}_ci95": [low, high],
        "response_tokens": length_stats([r.response_tokens for r in records]),
        "truncated": sum(r.finish_reason == "length" for r in records) / len(records),
        "repetition@20": sum(r.repetition for r in records) / len(records),
    }
    vote_key = getattr(verifier, "vote_key", None)
    if vote_key is not None:
        votes = [majority_correct([_key(vote_key, r.answer) for r in rs], [r.score for r in rs]) for rs in per_problem]
        result[f"maj@{k}"] = sum(votes) / len(votes)
    return result


def _key(vote_key, answer: str | None):
    if answer is None:
        return None
    try:
        return vote_key(answer)
    except Exception:
        return answer


class SamplesLog:
    """`samples.jsonl`: appended chunk by chunk (flushed and synced), read back on resume.

    A chunk counts as done only when all its lines are present; a half-written chunk (the
    process was killed) is dropped from the file and generated again.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self, expected: Callable[[str, int], int]) -> dict[tuple[str, int], list[Record]]:
        """Complete chunks by (benchmark, chunk); `expected(benchmark, chunk)` is its line count."""
        if not self.path.is_file():
            return {}
        chunks: dict[tuple[str, int], list[Record]] = {}
        dropped = 0
        with self.path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                try:
                    record = Record(**json.loads(line))
                except (json.JSONDecodeError, TypeError) as err:
                    log.warning("%s:%d: unreadable line dropped (%s); its chunk is generated again", self.path, line_no, err)
                    dropped += 1
                    continue
                chunks.setdefault((record.benchmark, record.chunk), []).append(record)
        done = {key: rs for key, rs in chunks.items() if len(rs) == expected(*key)}
        if dropped or len(done) != len(chunks):
            self._rewrite(r for rs in done.values() for r in rs)
        return done

    def append(self, records: Iterable[Record]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _rewrite(self, records: Iterable[Record]) -> None:
        partial = self.path.with_suffix(".jsonl.tmp")
        with partial.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        partial.replace(self.path)


def evaluate_benchmark(policy, tokenizer, template, engine, scorer, verifier, benchmark: str, problems: list[Sample],
                       k: int, seed: int, problems_per_chunk: int, log_file: SamplesLog | None = None,
                       done: dict | None = None, on_chunk: Callable[[int], None] | None = None) -> list[Record]:
    """All records of one benchmark, generating only the chunks not already `done`."""
    records = []
    for chunk, start in enumerate(range(0, len(problems), problems_per_chunk)):
        if done and (benchmark, chunk) in done:
            records.extend(done[(benchmark, chunk)])
            continue
        fresh = generate_chunk(policy, tokenizer, template, engine, scorer, verifier, benchmark,
                               problems[start : start + problems_per_chunk], chunk, k, seed)
        if log_file is not None:
            log_file.append(fresh)
        records.extend(fresh)
        if on_chunk is not None:
            on_chunk(chunk)
    return records


def evaluate_heldout(policy, tokenizer, template, samples: list[Sample], verifier, engine,
                     samples_per_problem: int = 4, seed: int = 0) -> dict[str, float]:
    """Sample `samples_per_problem` responses per problem and score them.

    Returns:
        `pass@1` (= avg@k: mean score), `pass@k`, `response_length`, `errors`.
    """
    k = samples_per_problem
    rollout = seeded_generate(engine, policy, [template.encode(s, tokenizer) for s in samples], k, seed)
    per_row = [samples[g] for g in rollout.group_ids.tolist()]
    scorer = verifier if isinstance(verifier, ScoringRunner) else ScoringRunner(verifier)
    scores, extra = scorer(rollout.texts, per_row)
    correct = (scores == 1).view(len(samples), k).sum(-1).tolist()
    return {
        "pass@1": scores.mean().item(),
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / len(samples),
        "response_length": rollout.response_mask.sum(-1).float().mean().item(),
        "errors": extra["reward/errors"],
        "timeouts": extra["reward/timeouts"],
    }
