"""Clip-Cov, KL-Cov and the entropy bonus (Cui et al. 2025, arXiv 2505.22617): hand-worked numbers.

The batch every test shares, 2 responses x 3 tokens, the last token of response 1 padding
(5 valid tokens):

    A         = [+2, -2]                    mean over valid tokens (3 x 2 - 2 x 2) / 5 = 0.4
    A - mean  = [+1.6, -2.4]
    log p     = [[-0.2, -0.6, -3.0],        mean over valid tokens -8.0 / 5 = -1.6
                 [-4.0, -0.2,  pad]]
    log p - mean = [[1.4, 1.0, -1.4], [-2.4, 1.4]]
    cov       = [[1.6 x 1.4, 1.6 x 1.0, 1.6 x -1.4], [-2.4 x -2.4, -2.4 x 1.4]]
              = [[2.24, 1.60, -2.24], [5.76, -3.36]]

With the paper's band (1, 5) the candidates are (0,0) 2.24 and (0,1) 1.60; (1,0) 5.76 is above it.
"""

from __future__ import annotations

import math

import pytest
import torch

from archer import cov_ops, ops
from archer.config_checks import ConfigError
from archer.constraints import ClipCovConstraint, DualTokenConstraint, KLCovConstraint, UniformConstraint
from archer.types import PolicyBatch

LOGP = [[-0.2, -0.6, -3.0], [-4.0, -0.2, -9.0]]
MASK = torch.tensor([[True, True, True], [True, True, False]])
ADV = torch.tensor([2.0, -2.0])
COV = torch.tensor([[2.24, 1.60, -2.24], [5.76, -3.36, 0.0]])


def batch(old_shift: dict | None = None, entropy=None) -> tuple[PolicyBatch, torch.Tensor]:
    """The module docstring's batch; old log-probs equal the current ones except where
    `old_shift` {(row, col): d} sets log p_old = log p - d (so log r = d)."""
    logprobs = torch.tensor(LOGP, requires_grad=True)
    old = logprobs.detach().clone()
    for (row, col), shift in (old_shift or {}).items():
        old[row, col] -= shift
    return PolicyBatch(logprobs, old, None, ADV, MASK, entropy=entropy), logprobs


def grad_of(constraint, b: PolicyBatch, leaf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = constraint(b)
    (grad,) = torch.autograd.grad(out.loss, leaf)
    return out.loss.detach(), grad


# ----------------------------------------------------------------------------- the covariance


def test_centered_covariance_matches_the_hand_numbers_and_is_zero_on_padding():
    cov = cov_ops.centered_covariance(torch.tensor(LOGP), ADV, MASK)
    torch.testing.assert_close(cov, COV)
    assert not cov.requires_grad


def test_token_budget_is_floor_of_ratio_times_valid_tokens_and_at_least_one():
    assert cov_ops.token_budget(MASK, 2e-4).item() == 1  # floor(0.001) -> 1
    assert cov_ops.token_budget(MASK, 0.4).item() == 2  # floor(2.0)
    assert cov_ops.token_budget(torch.ones(10, 100, dtype=torch.bool), 2e-3).item() == 2


# ----------------------------------------------------------------------------- Clip-Cov


def test_clip_cov_detaches_exactly_the_selected_token_and_leaves_the_others_gradient_unchanged():
    # (0,1) was cut by PPO's clip: log r = 0.5, r = 1.65 > 1.2 with A > 0, so verl never picks it.
    # The only candidate left is (0,0); budget floor(0.2 x 5) = 1.
    b, leaf = batch({(0, 1): 0.5})
    clip_cov = ClipCovConstraint(clip_cov_ratio=0.2, clip_cov_lb=1.0, clip_cov_ub=5.0)
    uniform = UniformConstraint(eps_low=0.2, eps_high=0.2, kl_coef=0.0, dual_clip=None)
    clipped = torch.tensor([[False, True, False], [False, False, False]])
    expected = torch.tensor([[True, False, False], [False, False, False]])
    for seed in range(20):  # whatever the draw: the clipped (0,1) is never a candidate
        torch.manual_seed(seed)
        assert torch.equal(clip_cov.detached_tokens(b, clipped), expected)

    loss, grad = grad_of(clip_cov, b, leaf)
    base_loss, base_grad = grad_of(uniform, b, leaf)
    # token loss -A r / 5 tokens: d/dlogp = -A r / 5 = -0.4 on response 0, +0.4 on response 1;
    # 0 on the clipped (0,1), on padding, and (Clip-Cov) on the detached (0,0)
    torch.testing.assert_close(base_grad, torch.tensor([[-0.4, 0.0, -0.4], [0.4, 0.4, 0.0]]))
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0, -0.4], [0.4, 0.4, 0.0]]))
    # losses: uniform (-2 - 2.4 - 2 + 2 + 2) / 5 = -0.48; Clip-Cov zeroes (0,0)'s -2: -0.4 / 5 = -0.08
    assert base_loss.item() == pytest.approx(-0.48, abs=1e-6)
    assert loss.item() == pytest.approx(-0.08, abs=1e-6)
    assert clip_cov(b).metrics["loss/cov_detached_share"].item() == pytest.approx(1 / 5)


def test_clip_cov_draws_uniformly_among_candidates_and_repeats_under_a_seed():
    # No PPO clip: candidates (0,0) and (0,1); budget 1 picks one of them at random.
    b, _ = batch()
    clip_cov = ClipCovConstraint(clip_cov_ratio=0.2)
    none = torch.zeros(2, 3, dtype=torch.bool)
    picks = []
    for seed in range(200):
        torch.manual_seed(seed)
        detached = clip_cov.detached_tokens(b, none)
        assert detached.sum() == 1 and not (detached & ~torch.tensor([[True, True, False], [False] * 3])).any()
        picks.append(bool(detached[0, 0]))
        torch.manual_seed(seed)
        assert torch.equal(clip_cov.detached_tokens(b, none), detached)  # same RNG state, same draw
    assert 70 < sum(picks) < 130  # both candidates are drawn, about equally often
    # budget 2 (ratio 0.4) takes both; the band (1, 2) only holds (0,1) at 1.60
    assert torch.equal(ClipCovConstraint(clip_cov_ratio=0.4).detached_tokens(b, none),
                       torch.tensor([[True, True, False], [False] * 3]))
    assert torch.equal(ClipCovConstraint(clip_cov_ratio=0.4, clip_cov_ub=2.0).detached_tokens(b, none),
                       torch.tensor([[False, True, False], [False] * 3]))


def test_clip_cov_with_a_generator_is_deterministic_without_touching_the_global_rng():
    b, _ = batch()
    none = torch.zeros(2, 3, dtype=torch.bool)
    first = ClipCovConstraint(clip_cov_ratio=0.2, generator=torch.Generator().manual_seed(3)).detached_tokens(b, none)
    again = ClipCovConstraint(clip_cov_ratio=0.2, generator=torch.Generator().manual_seed(3)).detached_tokens(b, none)
    assert torch.equal(first, again)


# ----------------------------------------------------------------------------- KL-Cov


def test_kl_cov_penalises_the_top_covariance_tokens_and_gives_the_hand_worked_loss():
    # log r = 0.5 at (0,1) and -0.5 at (1,0); budget floor(0.4 x 5) = 2: the top two by cov,
    # (1,0) 5.76 and (0,0) 2.24, get + |log r|. Token losses (-A r, no clip):
    #   (0,0) -2 + |0| = -2       (0,1) -2 e^0.5 = -3.29744     (0,2) -2
    #   (1,0) 2 e^-0.5 + 0.5 = 1.71306                          (1,1) +2
    # loss = (-2 - 3.29744 - 2 + 1.71306 + 2) / 5 = -0.716876
    b, leaf = batch({(0, 1): 0.5, (1, 0): -0.5})
    kl_cov = KLCovConstraint(kl_cov_ratio=0.4, ppo_kl_coef=1.0)
    assert torch.equal(kl_cov.penalised_tokens(b), torch.tensor([[True, False, False], [True, False, False]]))
    loss, grad = grad_of(kl_cov, b, leaf)
    assert loss.item() == pytest.approx((-2 - 2 * math.exp(0.5) - 2 + 2 * math.exp(-0.5) + 0.5 + 2) / 5, abs=1e-6)
    assert loss.item() == pytest.approx(-0.716876, abs=1e-5)
    # d/dlogp: -A r / 5, plus sign(log r) / 5 on penalised tokens: (1,0) (2 e^-0.5 - 1) / 5 = 0.042612;
    # (0,0) has log r = 0, where |.|'s gradient is 0 (as in verl: the penalty bites after the first update)
    expected = torch.tensor([[-0.4, -0.4 * math.exp(0.5), -0.4], [(2 * math.exp(-0.5) - 1) / 5, 0.4, 0.0]])
    torch.testing.assert_close(grad, expected)
    metrics = kl_cov(b).metrics
    assert metrics["loss/cov_penalised_share"].item() == pytest.approx(2 / 5)
    assert metrics["loss/abs_log_ratio"].item() == pytest.approx(1.0 / 5)


def test_kl_cov_default_ratio_penalises_one_token_and_never_padding():
    b, _ = batch()
    assert torch.equal(KLCovConstraint().penalised_tokens(b), torch.tensor([[False] * 3, [True, False, False]]))
    # padding has the largest raw value but is never chosen; an empty mask chooses nothing
    cov = torch.tensor([[1.0, 9.0]])
    assert torch.equal(cov_ops.kl_cov_penalised(cov, torch.tensor([[True, False]]), 1), torch.tensor([[True, False]]))
    assert not cov_ops.kl_cov_penalised(cov, torch.zeros(1, 2, dtype=torch.bool), 1).any()


def test_kl_cov_has_no_ratio_clip():
    # r = e^1 = 2.72 with A > 0: PPO would clip at 1.2; KL-Cov's gradient stays -A r / N
    b, leaf = batch({(0, 2): 1.0})
    _, grad = grad_of(KLCovConstraint(kl_cov_ratio=2e-4), b, leaf)
    assert grad[0, 2].item() == pytest.approx(-2 * math.e / 5, rel=1e-5)


@pytest.mark.parametrize("build, key", [
    (lambda: ClipCovConstraint(clip_cov_ratio=0.0), "constraint.clip_cov_ratio"),
    (lambda: ClipCovConstraint(clip_cov_lb=5.0, clip_cov_ub=1.0), "constraint.clip_cov_lb"),
    (lambda: KLCovConstraint(kl_cov_ratio=1.5), "constraint.kl_cov_ratio"),
    (lambda: KLCovConstraint(ppo_kl_coef=-1.0), "constraint.ppo_kl_coef"),
    (lambda: UniformConstraint(entropy_coef=-0.1), "constraint.entropy_coef"),
])
def test_bad_settings_fail_at_construction_naming_the_key(build, key):
    with pytest.raises(ConfigError, match=key):
        build()


# ----------------------------------------------------------------------------- entropy bonus


def test_chunked_entropy_gradient_matches_autograd_of_the_naive_formula():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    tokens = torch.randint(0, 11, (3, 5))
    w_lp, w_h = torch.randn(3, 5), torch.randn(3, 5)
    for temperature in (1.0, 0.7):
        lp, h = ops.token_logprobs_and_entropy(logits, tokens, temperature, chunk_rows=4)
        lp_ref, h_ref = ops.naive_logprobs_and_entropy(logits, tokens, temperature)
        for objective, reference in (((h * w_h).sum(), (h_ref * w_h).sum()),
                                     ((lp * w_lp + h * w_h).sum(), (lp_ref * w_lp + h_ref * w_h).sum())):
            (g,) = torch.autograd.grad(objective, logits, retain_graph=True)
            (g_ref,) = torch.autograd.grad(reference, logits, retain_graph=True)
            torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-5)
    # a hand value: two logits [x, 0], T = 1: H = -p log p - q log q, dH/dx = -p q x (here x = 1)
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    _, h = ops.token_logprobs_and_entropy(x, torch.tensor([0]))
    (g,) = torch.autograd.grad(h.sum(), x)
    p = 1 / (1 + math.exp(-1))
    assert g[0, 0].item() == pytest.approx(-p * (1 - p), abs=1e-6)
    assert g[0, 1].item() == pytest.approx(p * (1 - p), abs=1e-6)


@pytest.mark.parametrize("constraint_of", [
    lambda coef: UniformConstraint(kl_coef=0.0, entropy_coef=coef),
    lambda coef: ClipCovConstraint(clip_cov_ratio=2e-4, entropy_coef=coef, generator=torch.Generator()),
    lambda coef: KLCovConstraint(entropy_coef=coef),
    lambda coef: DualTokenConstraint(entropy_coef=coef, aggregation="token_mean"),
])
def test_entropy_bonus_subtracts_coef_times_mean_entropy_and_its_gradient_reaches_the_logits(constraint_of):
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 7, requires_grad=True)
    tokens = torch.randint(0, 7, (2, 3))

    def loss_with(coef: float, naive: bool) -> torch.Tensor:
        fn = ops.naive_logprobs_and_entropy if naive else ops.token_logprobs_and_entropy
        lp, h = fn(logits, tokens)
        b = PolicyBatch(lp, lp.detach(), lp.detach(), ADV, MASK, high_entropy=MASK & (h > h.median()), entropy=h)
        constraint = constraint_of(coef)
        if isinstance(constraint, ClipCovConstraint):
            constraint.generator.manual_seed(0)  # the same draw in every call
        return constraint(b).loss

    _, h = ops.naive_logprobs_and_entropy(logits, tokens)
    mean_entropy = h[MASK].mean()  # token_mean over the 5 valid tokens
    assert (loss_with(0.5, False) - loss_with(0.0, False)).item() == pytest.approx(-0.5 * mean_entropy.item(), 1e-5)
    (g,) = torch.autograd.grad(loss_with(0.5, False), logits)
    (g_ref,) = torch.autograd.grad(loss_with(0.5, True), logits)
    (g_plain,) = torch.autograd.grad(loss_with(0.0, False), logits)
    torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(g, g_plain)  # the bonus changes the gradient
    assert g[1, 2].abs().sum() == 0  # padding gets none


def test_entropy_bonus_refuses_a_detached_entropy_and_runs_without_grad():
    b, _ = batch(entropy=torch.ones(2, 3))
    with pytest.raises(ValueError, match="entropy_coef"):
        UniformConstraint(kl_coef=0.0, entropy_coef=0.1)(b)
    with pytest.raises(ValueError, match="None"):
        UniformConstraint(kl_coef=0.0, entropy_coef=0.1)(batch()[0])
    with torch.no_grad():  # evaluation-style call: nothing to differentiate, no complaint
        lp = torch.tensor(LOGP)
        no_grad = PolicyBatch(lp, lp, None, ADV, MASK, entropy=torch.ones(2, 3))
        # token_mean of entropy 1 over 5 tokens: the loss drops by exactly 0.1
        plain = UniformConstraint(kl_coef=0.0)(no_grad).loss
        assert UniformConstraint(kl_coef=0.0, entropy_coef=0.1)(no_grad).loss.item() == pytest.approx(plain - 0.1)


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("preset, cls", [("clip_cov", ClipCovConstraint), ("kl_cov", KLCovConstraint),
                                         ("entropy_bonus", UniformConstraint)])
def test_ablation_presets_build_the_new_strategies_with_the_paper_defaults(preset, cls):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from archer.train import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        cfg = compose(config_name="train", overrides=[f"ablation={preset}"])
    constraint = instantiate(cfg.constraint)
    assert type(constraint) is cls and not constraint.needs_reference
    if preset == "clip_cov":
        assert (constraint.clip_cov_ratio, constraint.clip_cov_lb, constraint.clip_cov_ub) == (2e-4, 1.0, 5.0)
    if preset == "kl_cov":
        assert (constraint.kl_cov_ratio, constraint.ppo_kl_coef) == (2e-3, 1.0)
    if preset == "entropy_bonus":
        assert constraint.entropy_coef == 0.001 and constraint.eps_high == 0.28
