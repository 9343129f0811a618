"""GPU-only checks: skipped on machines without CUDA."""

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_rl_steps_run_on_cuda(run, tiny_model_dir):
    summary, _ = run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all",
                      "trainer=gpu", "trainer.precision=32-true"], name="gpu")
    assert summary["rl_steps"] == 2


def test_chunked_logprobs_match_full_softmax_on_cuda():
    from archer import ops

    logits = torch.randn(64, 8, 32_000, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    tokens = torch.randint(0, 32_000, (64, 8), device="cuda")
    lp, h = ops.token_logprobs_and_entropy(logits, tokens, 0.8, chunk_rows=100)
    lp_ref, h_ref = ops.naive_logprobs_and_entropy(logits, tokens, 0.8)
    torch.testing.assert_close(lp, lp_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-3, rtol=1e-3)
