"""What one RL step reports: rollout statistics and the TensorBoard text sample with token classes."""

from __future__ import annotations

from torch import Tensor

from archer.experience import Experience
from archer.metrics import repetition_ratio
from archer.types import WEIGHT


def rollout_metrics(exp: Experience, advantages: Tensor, seconds: float) -> dict[str, float]:
    """Response lengths, truncation, 20-gram repetition, advantage size and throughput of a step."""
    lengths = exp.rollout.response_mask.sum(-1).float()
    tokens = [row[mask].tolist() for row, mask in zip(exp.rollout.response_ids, exp.rollout.response_mask)]
    responses = float(exp.rollout.num_responses)
    means = {
        "train/response_length": lengths.mean().item(),
        "train/truncated": exp.rollout.truncated.float().mean().item(),
        "train/repetition_20gram": sum(repetition_ratio(t, 20) for t in tokens) / len(tokens),
        "train/advantage_abs": advantages.abs().mean().item(),
    }
    return {
        **means, **{f"{key}{WEIGHT}": responses for key in means},  # each a mean over responses
        "train/response_length_max": lengths.max().item(),
        "train/trained_responses": responses,
        "perf/tokens_per_second": lengths.sum().item() / max(seconds, 1e-9),
    }


def text_sample(exp: Experience, classes: Tensor, tokenizer) -> str:
    """Markdown of the step's first response with its high-entropy tokens in bold."""
    mask = exp.rollout.response_mask[0]
    pieces = []
    for token, high in zip(exp.rollout.response_ids[0][mask].tolist(), classes[0][mask.to(classes.device)].tolist()):
        text = tokenizer.decode([token]).replace("\n", "\\n")
        pieces.append(f"**{text}**" if high else text)
    return (f"prompt: `{exp.samples[0].problem}`  \nscore: {exp.scores[0].item():.0f}  \n"
            f"response (**bold** = high-entropy class):  \n{''.join(pieces)}")
