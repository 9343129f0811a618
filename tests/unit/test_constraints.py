"""Constraint strategies: a worked Archer example, equivalences, masking, validation."""

import math

import pytest
import torch

from archer import ops
from archer.classifiers import ResponseQuantileClassifier
from archer.config_checks import ConfigError
from archer.constraints import (
    DualTokenConstraint,
    EntropyMaskConstraint,
    LoptiConstraint,
    TokenClassConstraint,
    UniformConstraint,
)
from archer.types import PolicyBatch, TokenStats


def random_batch(n=6, t=7, seed=0, with_classes=True):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = torch.arange(t) < lengths.unsqueeze(-1)
    old = -torch.rand(n, t, generator=g) * 3
    logprobs = (old + 0.4 * torch.randn(n, t, generator=g)).requires_grad_(True)
    ref = old + 0.3 * torch.randn(n, t, generator=g)
    adv = torch.randn(n, generator=g)
    high = (torch.rand(n, t, generator=g) < 0.3) & mask if with_classes else None
    return PolicyBatch(logprobs, old, ref, adv, mask, high)


def loss_and_grad(constraint, batch):
    batch.logprobs.grad = None
    out = constraint(batch)
    out.loss.backward()
    return out.loss.detach(), batch.logprobs.grad.clone(), out


def test_dual_token_defaults_reproduce_the_reference_behaviour_on_a_worked_example():
    # Two responses of 5 tokens. Per-response 0.8-quantile of entropy:
    #   row 0: 1,2,3,4,5 -> tau = 4.2 -> token 4 is reasoning (high entropy)
    #   row 1: 5,1,1,1,1 -> sorted 1,1,1,1,5 -> tau = 1 + 0.2 * 4 = 1.8 -> token 0 is reasoning
    entropy = torch.tensor([[1.0, 2, 3, 4, 5], [5.0, 1, 1, 1, 1]])
    mask = torch.ones(2, 5, dtype=torch.bool)
    old = torch.zeros(2, 5)
    logprobs = torch.stack([torch.full((5,), math.log(1.4)), torch.full((5,), math.log(0.6))]).requires_grad_(True)
    high = ResponseQuantileClassifier(0.8)(TokenStats(entropy, old, mask))
    assert high.tolist() == [[False, False, False, False, True], [True, False, False, False, False]]
    # x = ref - logp: -1 on row 0 knowledge tokens, +1 on row 1 knowledge tokens, 2 on reasoning tokens
    x = torch.tensor([[-1.0, -1, -1, -1, 2], [2.0, 1, 1, 1, 1]])
    batch = PolicyBatch(logprobs, old, logprobs.detach() + x, torch.tensor([1.0, -1.0]), mask, high)
    out = DualTokenConstraint()(batch)
    # Policy part. Row 0 (A = +1, r = 1.4): knowledge tokens clip at 1 + 0.2 -> -1.2 each,
    # the reasoning token's range is 1.5 -> -1.4. Row 1 (A = -1, r = 0.6): knowledge tokens
    # clip at 1 - 0.2 -> max(0.6, 0.8) = 0.8 each; the reasoning token's bound is 0.5 -> 0.6.
    policy = (4 * -1.2 - 1.4 + 4 * 0.8 + 0.6) / 10
    # KL part, per class then per response (reference): knowledge k3 means are e^-1 (row 0)
    # and e - 2 (row 1); reasoning tokens have beta 0, so their k3 = e^2 - 3 never counts.
    kl = 0.001 * (math.exp(-1) + (math.e - 2)) / 2
    assert out.loss.item() == pytest.approx(policy + kl, abs=1e-6)
    assert out.metrics["loss/policy"].item() == pytest.approx(policy, abs=1e-6)
    # which class got which clip: every knowledge token was clipped, no reasoning token was
    assert out.metrics["loss/clipfrac_low"].item() == 1.0
    assert out.metrics["loss/clipfrac_high"].item() == 0.0
    assert out.metrics["loss/token_share_high"].item() == pytest.approx(0.2)
    assert out.metrics["loss/kl_low"].item() == pytest.approx((4 * math.exp(-1) + 4 * (math.e - 2)) / 8, abs=1e-6)
    # gradient reaches only the unclipped reasoning tokens (+ the KL pull on knowledge tokens)
    out.loss.backward()
    grad = logprobs.grad
    assert grad[0, 4].item() == pytest.approx(-1.4 / 10, abs=1e-6)
    assert grad[1, 0].item() == pytest.approx(0.6 / 10, abs=1e-6)
    # knowledge tokens: d/dlogp of 0.001 * mean(k3) with k3 = e^x - x - 1, dx/dlogp = -1
    # -> 0.001 / 2 / 4 * (1 - e^x); row 0 x = -1
    assert grad[0, 0].item() == pytest.approx(0.001 / 8 * (1 - math.exp(-1)), abs=1e-7)


@pytest.mark.parametrize("aggregation", ops.AGGREGATIONS)
def test_dual_token_with_equal_settings_equals_uniform(aggregation):
    same = TokenClassConstraint(eps_low=0.2, eps_high=0.28, kl_coef=0.01)
    common = dict(aggregation=aggregation, norm_length=7, dual_clip=3.0)
    uniform = UniformConstraint(eps_low=0.2, eps_high=0.28, kl_coef=0.01, **common)
    dual = DualTokenConstraint(same, same, kl_normalization="global", **common)
    batch = random_batch()
    loss_u, grad_u, _ = loss_and_grad(uniform, batch)
    loss_d, grad_d, _ = loss_and_grad(dual, batch)
    assert loss_d.item() == pytest.approx(loss_u.item(), abs=1e-6)
    torch.testing.assert_close(grad_d, grad_u, atol=1e-6, rtol=0)
    # per-class KL normalisation differs from uniform only through the KL term
    no_kl = TokenClassConstraint(0.2, 0.28, 0.0)
    loss_p, grad_p, _ = loss_and_grad(DualTokenConstraint(no_kl, no_kl, kl_normalization="per_class", **common), batch)
    loss_0, grad_0, _ = loss_and_grad(UniformConstraint(0.2, 0.28, 0.0, **common), batch)
    assert loss_p.item() == pytest.approx(loss_0.item(), abs=1e-6)
    torch.testing.assert_close(grad_p, grad_0, atol=1e-6, rtol=0)


def test_entropy_mask_gives_zero_gradient_on_low_entropy_tokens_and_keeps_denominators():
    batch = random_batch(seed=3)
    loss, grad, _ = loss_and_grad(EntropyMaskConstraint(), batch)
    low = batch.response_mask & ~batch.high_entropy
    assert (grad[low] == 0).all()
    assert (grad[batch.high_entropy] != 0).any()
    # denominators unchanged: sum over high-entropy tokens / all response tokens
    surrogate = ops.clipped_surrogate(batch.logprobs, batch.old_logprobs, batch.advantages, 0.2, 0.28, 10.0)
    expected = (surrogate["loss"] * batch.high_entropy).sum() / batch.response_mask.sum()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_lopti_phases_split_the_uniform_loss_between_disjoint_token_sets():
    batch = random_batch(seed=4)
    lopti = LoptiConstraint(eps_low=0.2, eps_high=0.28, kl_coef=0.0)
    first, second = lopti.phases
    assert (first.name, second.name) == ("low_probability", "high_probability")
    loss_1, grad_1, _ = loss_and_grad(first, batch)
    loss_2, grad_2, _ = loss_and_grad(second, batch)
    assert (grad_1[~batch.high_entropy] == 0).all() and (grad_2[batch.high_entropy] == 0).all()
    loss_u, grad_u, _ = loss_and_grad(UniformConstraint(0.2, 0.28, 0.0), batch)
    assert (loss_1 + loss_2).item() == pytest.approx(loss_u.item(), abs=1e-6)
    torch.testing.assert_close(grad_1 + grad_2, grad_u, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "constraint",
    [
        DualTokenConstraint(),
        DualTokenConstraint(kl_normalization="global", aggregation="seq_mean_token_mean"),
        UniformConstraint(aggregation="seq_mean_token_sum"),
        EntropyMaskConstraint(kl_coef=0.01, aggregation="seq_mean_token_sum_norm", norm_length=7),
    ],
)
def test_constraint_gradients_do_not_depend_on_the_micro_batch_split(constraint):
    batch = random_batch(n=8, seed=5)
    logprobs = batch.logprobs
    num_tokens, num_sequences = batch.response_mask.sum(), batch.response_mask.shape[0]

    def grad_for(split):
        logprobs.grad = None
        for rows in torch.arange(8).chunk(split):
            micro = PolicyBatch(
                logprobs[rows], batch.old_logprobs[rows], batch.ref_logprobs[rows], batch.advantages[rows],
                batch.response_mask[rows], batch.high_entropy[rows], num_tokens, num_sequences,
            )
            constraint(micro).loss.backward()
        return logprobs.grad.clone()

    whole = grad_for(1)
    for split in (2, 8):
        torch.testing.assert_close(grad_for(split), whole, atol=1e-7, rtol=0)


def test_reference_pass_and_classes_are_declared():
    assert not UniformConstraint(kl_coef=0.0).needs_reference
    assert UniformConstraint(kl_coef=0.001).needs_reference
    assert DualTokenConstraint().needs_reference and DualTokenConstraint().needs_classes
    no_kl = TokenClassConstraint(0.2, 0.2, 0.0)
    assert not DualTokenConstraint(no_kl, no_kl).needs_reference
    batch = random_batch(with_classes=False)
    with pytest.raises(ValueError, match="high_entropy"):
        DualTokenConstraint()(batch)
    with pytest.raises(ValueError, match="ref_logprobs"):
        UniformConstraint(kl_coef=0.1)(PolicyBatch(batch.logprobs, batch.old_logprobs, None, batch.advantages, batch.response_mask))


@pytest.mark.parametrize(
    "build, key",
    [
        (lambda: UniformConstraint(eps_low=-0.1), "constraint.eps_low"),
        (lambda: UniformConstraint(eps_high=-1), "constraint.eps_high"),
        (lambda: UniformConstraint(aggregation="mean"), "constraint.aggregation"),
        (lambda: UniformConstraint(kl_estimator="kl"), "constraint.kl_estimator"),
        (lambda: UniformConstraint(dual_clip=0.5), "constraint.dual_clip"),
        (lambda: UniformConstraint(aggregation="seq_mean_token_sum_norm"), "constraint.norm_length"),
        (lambda: DualTokenConstraint(high_entropy={"eps_low": 0.2, "eps_high": -0.5, "kl_coef": 0}), "constraint.high_entropy.eps_high"),
        (lambda: DualTokenConstraint(low_entropy={"eps_low": 0.2, "eps_high": 0.2, "kl_coef": -1}), "constraint.low_entropy.kl_coef"),
        (lambda: DualTokenConstraint(low_entropy={"eps": 0.2}), "constraint.low_entropy"),
        (lambda: DualTokenConstraint(kl_normalization="both"), "constraint.kl_normalization"),
    ],
)
def test_wrong_values_fail_at_construction_naming_the_key(build, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build()
