"""Token statistics that mean the same thing for every strategy, for comparing them.

Each constraint logs entropy per class of *its own* classifier (`loss/entropy_high`): Lopti's
class is the low-probability tokens, 80/20's the batch's top 20%, GRPO's a metrics-only split.
Two strategies' `loss/entropy_high` may therefore measure different token sets, and a loss
without a KL term logs no KL at all. With `monitor.enabled`, every RL step also splits the
rollout the same way for every strategy (the top 20% of each response's tokens by the entropy
of the policy that sampled it: Archer's classes, which the paper's claims are about) and logs,
per class, the entropy and the KL to the frozen reference (the policy as RL started):

    monitor/entropy_high, monitor/entropy_low, monitor/ref_kl_high, monitor/ref_kl_low

The KL is the k3 estimator (`ops.kl_penalty`, the reference code's low_var_kl), an unbiased
estimate of KL(pi || ref) on tokens sampled from pi. It costs one no-grad forward of the
reference per step (and keeps a reference copy for losses that have no KL).
"""

from __future__ import annotations

from torch import Tensor

from archer import ops
from archer.classifiers.quantile import row_quantile
from archer.types import WEIGHT

MONITOR_QUANTILE = 0.8


def class_statistics(entropy: Tensor, logprobs: Tensor, ref_logprobs: Tensor | None, mask: Tensor,
                     quantile: float = MONITOR_QUANTILE) -> dict[str, Tensor]:
    """Entropy and KL to the reference of the high- and low-entropy classes of a rollout.

    Args:
        entropy, logprobs: float [N, T], the sampling policy's entropy and the sampled tokens'
            log-probs; ref_logprobs: the same tokens under the reference (None: no KL figures).
        mask: bool [N, T], the response tokens.
        quantile: a token is high-entropy above this quantile of its own response's entropies.

    Returns:
        `monitor/<stat>_<class>` means with their `@weight` (token counts), for cross-rank reduction.
    """
    tau = row_quantile(entropy, mask, quantile)
    high = (entropy > tau.unsqueeze(-1)) & mask
    classes = {"high": high, "low": mask & ~high}
    kl = None if ref_logprobs is None else ops.kl_penalty(logprobs, ref_logprobs, "k3")
    out: dict[str, Tensor] = {}
    for name, cls in classes.items():
        weight = cls.sum().float()
        out[f"monitor/entropy_{name}"] = ops.masked_mean(entropy.float(), cls)
        out[f"monitor/entropy_{name}{WEIGHT}"] = weight
        if kl is not None:
            out[f"monitor/ref_kl_{name}"] = ops.masked_mean(kl.float(), cls)
            out[f"monitor/ref_kl_{name}{WEIGHT}"] = weight
    return {k: v.detach() for k, v in out.items()}
