"""Archer's default loss weighs every response the same, whatever its length (the reference's
effective weighting), for any micro-batch split and on 1 or 2 ranks."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from archer.train import config_dir
from archer.types import PolicyBatch

LENGTHS = [1, 12, 3, 30]  # very different lengths in one mini-batch
ADVANTAGES = [1.0, -0.5, 2.0, -1.0]


def archer_constraint():
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return instantiate(compose(config_name="train").constraint)  # the shipped Archer config


def batch(rows: list[int], num_sequences: float | None = None):
    """On-policy (ratio 1), reference = policy (KL 0): each token's loss is -A, so a response's
    token mean is -A_i whatever its length."""
    width = max(LENGTHS)
    mask = torch.arange(width) < torch.tensor([LENGTHS[r] for r in rows]).unsqueeze(-1)
    logprobs = torch.full((len(rows), width), -1.0, requires_grad=True)
    high = torch.zeros_like(mask)
    high[:, 0] = True  # one reasoning token per response
    adv = torch.tensor([ADVANTAGES[r] for r in rows])
    return PolicyBatch(logprobs, logprobs.detach(), logprobs.detach(), adv, mask, high & mask,
                       num_tokens=float(sum(LENGTHS)), num_sequences=num_sequences), logprobs


def hand_loss_and_grad():
    n = len(LENGTHS)
    loss = sum(-a for a in ADVANTAGES) / n  # mean over responses of each response's loss
    grad = torch.zeros(n, max(LENGTHS))
    for i, (length, a) in enumerate(zip(LENGTHS, ADVANTAGES)):
        grad[i, :length] = -a / (length * n)  # d/dlogp of -A r, r = exp(logp - old) = 1
    return loss, grad


@pytest.mark.parametrize("split", [[[0, 1, 2, 3]], [[0], [1], [2], [3]], [[0, 3], [1, 2]], [[2, 0, 1], [3]]])
def test_archer_loss_is_the_mean_of_per_response_losses_for_any_split(split):
    constraint = archer_constraint()
    assert constraint.aggregation == "seq_mean_token_mean"
    expected_loss, expected_grad = hand_loss_and_grad()
    total, grad = 0.0, torch.zeros_like(expected_grad)
    for rows in split:
        b, leaf = batch(rows, num_sequences=float(len(LENGTHS)))
        out = constraint(b)
        out.loss.backward()
        total += out.loss.item()
        grad[rows] = leaf.grad
    assert total == pytest.approx(expected_loss, abs=1e-6)
    torch.testing.assert_close(grad, expected_grad)
    # a token mean would weigh the 30-token response 30x the 1-token one: not what the reference trains
    assert expected_loss != pytest.approx(sum(-a * n for a, n in zip(ADVANTAGES, LENGTHS)) / sum(LENGTHS))


def _rank(rank: int, world: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    rows = [[0, 1], [2, 3]][rank]
    local = torch.tensor(float(len(rows)))
    dist.all_reduce(local)  # the global response count, as the trainer computes it
    b, leaf = batch(rows, num_sequences=local)
    loss = archer_constraint()(b).loss
    (loss * world).backward()  # the trainer undoes DDP's gradient averaging this way
    grads = [torch.zeros(len(LENGTHS) // world, max(LENGTHS)) for _ in range(world)]
    dist.all_gather(grads, leaf.grad / world)  # what DDP's averaging then gives each rank's rows
    total = loss.detach().clone()
    dist.all_reduce(total)
    if rank == 0:
        torch.save((total.item(), torch.cat(grads)), out)
    dist.destroy_process_group()


def test_two_ranks_give_the_same_loss_and_gradient(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.start_processes(_rank, args=(2, port, str(tmp_path / "out.pt")), nprocs=2, join=True, start_method="spawn")
    total, grad = torch.load(tmp_path / "out.pt")
    expected_loss, expected_grad = hand_loss_and_grad()
    assert total == pytest.approx(expected_loss, abs=1e-6)
    torch.testing.assert_close(grad, expected_grad)


def test_nominal_denominator_shrinks_a_thinned_mini_batch_and_needs_a_per_response_aggregation():
    constraint = archer_constraint()
    b, _ = batch([0, 1, 2, 3], num_sequences=8.0)  # a mini-batch of 8 nominal responses, 4 kept
    assert constraint(b).loss.item() == pytest.approx(hand_loss_and_grad()[0] / 2)
