"""Pure tensor maths: hand-worked numbers and equivalences (archer/ops.py)."""

import math

import pytest
import torch

from archer import ops


def test_logprobs_and_entropy_match_full_softmax_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 50, requires_grad=True)
    tokens = torch.randint(0, 50, (3, 7))
    for temperature in (1.0, 0.7):
        # chunk_rows=4 splits the 21 rows unevenly, exercising the last partial chunk
        lp, h = ops.token_logprobs_and_entropy(logits, tokens, temperature, chunk_rows=4)
        lp_ref, h_ref = ops.naive_logprobs_and_entropy(logits, tokens, temperature)
        torch.testing.assert_close(lp, lp_ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=1e-5)
        weights = torch.randn(3, 7)
        (g,) = torch.autograd.grad((lp * weights).sum(), logits)
        (g_ref,) = torch.autograd.grad((lp_ref * weights).sum(), logits)
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-5)
        assert h.requires_grad  # the entropy bonus backpropagates through it (test_cov_constraints.py)


def test_entropy_hand_numbers_and_bf16_logits():
    # Uniform over 4 tokens: H = log 4, log p = -log 4. A peaked distribution: H ~ 0.
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]).to(torch.bfloat16)
    lp, h = ops.token_logprobs_and_entropy(logits, torch.tensor([2, 0]))
    assert lp.dtype == torch.float32
    assert lp[0].item() == pytest.approx(-math.log(4), abs=1e-6)
    assert h[0].item() == pytest.approx(math.log(4), abs=1e-6)
    assert h[1].item() == pytest.approx(0.0, abs=1e-6)
    # Temperature 2 halves the logits: [2, 0] -> [1, 0], p0 = e/(e+1)
    lp, _ = ops.token_logprobs_and_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), temperature=2.0)
    assert lp.item() == pytest.approx(math.log(math.e / (math.e + 1)), abs=1e-6)


def test_kl_estimators_hand_numbers_and_k3_clamps():
    logp, ref = torch.tensor([-1.0]), torch.tensor([-2.0])
    assert ops.kl_penalty(logp, ref, "k1").item() == pytest.approx(1.0)
    assert ops.kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5)
    assert ops.kl_penalty(logp, ref, "abs").item() == pytest.approx(1.0)
    # k3: x = ref - logp = -1; exp(-1) - (-1) - 1 = e^-1
    assert ops.kl_penalty(logp, ref, "k3").item() == pytest.approx(math.exp(-1), abs=1e-7)
    # x = -100 is clamped to -20: e^-20 + 20 - 1 = 19.0..., then the value is clamped to 10
    assert ops.kl_penalty(torch.tensor([0.0]), torch.tensor([-100.0]), "k3").item() == pytest.approx(10.0)
    # x = +100 clamped to +20: e^20 - 21 is huge, clamped to 10
    assert ops.kl_penalty(torch.tensor([-100.0]), torch.tensor([0.0]), "k3").item() == pytest.approx(10.0)
    # k3 is zero when the policies agree, and never negative
    assert ops.kl_penalty(ref, ref, "k3").item() == 0.0
    with pytest.raises(ValueError, match="unknown KL estimator"):
        ops.kl_penalty(logp, ref, "k9")


def _surrogate(ratio, advantage, eps_low=0.2, eps_high=0.2, dual_clip=10.0):
    logprobs = torch.tensor([[math.log(ratio)]], requires_grad=True)
    out = ops.clipped_surrogate(logprobs, torch.zeros(1, 1), torch.tensor([advantage]), eps_low, eps_high, dual_clip)
    (grad,) = torch.autograd.grad(out["loss"].sum(), logprobs)
    return out, grad.item()


def test_clipped_surrogate_hand_numbers():
    # A > 0, r = 1.5 > 1 + 0.2: the clipped term -1 * 1.2 wins the max; no gradient.
    out, grad = _surrogate(1.5, 1.0)
    assert out["loss"].item() == pytest.approx(-1.2)
    assert out["clipped_high"].item() and not out["clipped_low"].item()
    assert grad == 0.0
    # A > 0, r = 1.1 inside the range: loss -1.1, gradient d(-r)/dlogp = -r = -1.1
    out, grad = _surrogate(1.1, 1.0)
    assert out["loss"].item() == pytest.approx(-1.1)
    assert grad == pytest.approx(-1.1)
    # A < 0, r = 0.5 < 1 - 0.2: max(0.5, 0.8) = 0.8 (clipped low, no gradient)
    out, grad = _surrogate(0.5, -1.0)
    assert out["loss"].item() == pytest.approx(0.8)
    assert out["clipped_low"].item() and grad == 0.0
    # A < 0, r = 20: max(20, 1.2) = 20, dual clip min(20, c * 1 = 10) = 10, no gradient
    out, grad = _surrogate(20.0, -1.0)
    assert out["loss"].item() == pytest.approx(10.0)
    assert out["clipped_dual"].item() and grad == 0.0
    # without the dual clip the loss is 20 and the gradient flows
    out, grad = _surrogate(20.0, -1.0, dual_clip=None)
    assert out["loss"].item() == pytest.approx(20.0) and grad == pytest.approx(20.0)
    # asymmetric ranges: clip-higher 0.28 lets r = 1.25 through for A > 0
    out, grad = _surrogate(1.25, 1.0, eps_high=0.28)
    assert out["loss"].item() == pytest.approx(-1.25) and not out["clipped_high"].item()


def test_clipped_surrogate_log_ratio_clamp_and_per_token_ranges():
    # log-ratio 50 is clamped to 20 before exp
    out = ops.clipped_surrogate(torch.tensor([[50.0]]), torch.zeros(1, 1), torch.tensor([1.0]), 0.2, 0.2)
    assert out["ratio"].item() == pytest.approx(math.exp(20.0), rel=1e-5)
    # per-token eps tensors: the same ratio 1.3 is clipped for the 0.2 token, not the 0.5 one
    logprobs = torch.full((1, 2), math.log(1.3))
    eps = torch.tensor([[0.2, 0.5]])
    out = ops.clipped_surrogate(logprobs, torch.zeros(1, 2), torch.tensor([1.0]), eps, eps)
    assert out["loss"].tolist()[0] == pytest.approx([-1.2, -1.3])


def test_aggregate_hand_numbers():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    assert ops.aggregate(values, mask, "token_mean").item() == pytest.approx(10 / 4)
    # per-sequence means 2 and 4, averaged
    assert ops.aggregate(values, mask, "seq_mean_token_mean").item() == pytest.approx(3.0)
    assert ops.aggregate(values, mask, "seq_mean_token_sum").item() == pytest.approx(5.0)
    # Dr.GRPO: 10 / (2 sequences * 8 tokens of budget)
    assert ops.aggregate(values, mask, "seq_mean_token_sum_norm", norm_length=8).item() == pytest.approx(10 / 16)
    # global denominators replace the local ones
    assert ops.aggregate(values, mask, "token_mean", num_tokens=8).item() == pytest.approx(10 / 8)
    # an empty batch gives 0, not NaN
    assert ops.aggregate(values, torch.zeros_like(mask), "token_mean").item() == 0.0
    with pytest.raises(ValueError, match="unknown aggregation"):
        ops.aggregate(values, mask, "sum")


@pytest.mark.parametrize("mode", ops.AGGREGATIONS)
def test_every_aggregation_gives_the_same_gradient_for_any_micro_batch_split(mode):
    torch.manual_seed(1)
    n, t = 6, 5
    params = torch.randn(n, t, requires_grad=True)
    lengths = torch.tensor([5, 1, 3, 4, 2, 5])
    mask = torch.arange(t) < lengths.unsqueeze(-1)
    num_tokens, num_sequences = mask.sum(), n

    def grad_for(split: int) -> torch.Tensor:
        params.grad = None
        for rows in torch.arange(n).chunk(split):
            values = params[rows].square()  # any non-linear per-token loss
            loss = ops.aggregate(values, mask[rows], mode, num_tokens, num_sequences, norm_length=t)
            loss.backward()
        return params.grad.clone()

    whole = grad_for(1)
    for split in (2, 3, n):
        torch.testing.assert_close(grad_for(split), whole, atol=1e-7, rtol=0)
    # and the whole-batch value equals the local-denominator value
    direct = ops.aggregate(params.square(), mask, mode, norm_length=t)
    assert direct.item() == pytest.approx(ops.aggregate(params.square(), mask, mode, num_tokens, n, t).item())
