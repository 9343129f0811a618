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


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_bf16_mixed_master_weights_on_cuda(run, tiny_model_dir, engine):
    """The paper's precision on a GPU: fp32 master weights move at lr 1e-6 under bf16 autocast,
    and both engines sample in bf16 from them."""
    from tests.integration.conftest import FAST
    from tests.integration.test_fidelity import moved_share

    summary, run_dir = run(["model=hf", f"model.path={tiny_model_dir}", "trainer=gpu", "trainer.precision=bf16-mixed",
                            "optimizer.lr=1e-6", "filter=keep_all", f"rollout={engine}"],
                           name=f"bf16_{engine}", base=[k for k in FAST if not k.startswith("model.")])
    assert summary["rl_steps"] == 2
    assert moved_share(tiny_model_dir, run_dir / "hf_model") > 0.9
