"""Token classifiers: hand-worked thresholds, tie handling and edge cases."""

import pytest
import torch

from archer.classifiers import (
    BatchQuantileClassifier,
    GroupQuantileClassifier,
    LowProbabilityClassifier,
    NoTokenClassifier,
    RandomFractionClassifier,
    ResponseQuantileClassifier,
)
from archer.classifiers.quantile import row_quantile
from archer.config_checks import ConfigError
from archer.types import TokenStats

# Row 0: 5 valid tokens; row 1: all equal; row 2: one token; row 3: empty (all padding).
ENTROPY = torch.tensor(
    [
        [1.0, 2.0, 3.0, 4.0, 5.0, 9.0],
        [1.0, 1.0, 1.0, 1.0, 9.0, 9.0],
        [7.0, 9.0, 9.0, 9.0, 9.0, 9.0],
        [9.0, 9.0, 9.0, 9.0, 9.0, 9.0],
    ]
)
MASK = torch.arange(6) < torch.tensor([5, 4, 1, 0]).unsqueeze(-1)
STATS = TokenStats(ENTROPY, -ENTROPY, MASK, torch.tensor([0, 0, 1, 1]))


def test_response_quantile_hand_numbers_ties_and_edge_cases():
    high = ResponseQuantileClassifier(0.8)(STATS)
    # Row 0: position 0.8 * (5 - 1) = 3.2 -> tau = 4 + 0.2 * (5 - 4) = 4.2; only 5 is above.
    assert high[0].tolist() == [False, False, False, False, True, False]
    # all-equal entropies: tau equals every value, ties go to knowledge -> nothing high
    assert not high[1].any()
    # a one-token response: tau is its own entropy -> knowledge
    assert not high[2].any()
    # an empty row and padding (entropy 9 everywhere) are never classified
    assert not high[3].any()
    assert not (high & ~MASK).any()


def test_response_quantile_matches_torch_quantile_on_random_rows():
    torch.manual_seed(0)
    entropy = torch.rand(20, 37)
    mask = torch.arange(37) < torch.randint(1, 38, (20, 1))
    tau = row_quantile(entropy, mask, 0.8)
    for i in range(20):
        assert tau[i].item() == pytest.approx(torch.quantile(entropy[i][mask[i]], 0.8).item(), abs=1e-6)


def test_batch_quantile_uses_one_threshold_over_all_valid_tokens():
    high = BatchQuantileClassifier(0.8)(STATS)
    # valid values: 1,2,3,4,5, 1,1,1,1, 7 (10 tokens) -> sorted 1,1,1,1,1,2,3,4,5,7
    # position 0.8 * 9 = 7.2 -> tau = 4 + 0.2 * (5 - 4) = 4.2 -> tokens 5 and 7 are high
    assert high.sum().item() == 2
    assert high[0, 4] and high[2, 0]


def test_batch_quantile_works_beyond_torch_quantile_limit():
    n = 2**24 + 10  # torch.quantile refuses inputs this large
    entropy = torch.arange(n, dtype=torch.float32).unsqueeze(0)
    high = BatchQuantileClassifier(0.5)(TokenStats(entropy, entropy, torch.ones_like(entropy, dtype=torch.bool)))
    assert high.sum().item() == pytest.approx(n / 2, abs=1)


def test_group_quantile_pools_the_responses_of_one_prompt():
    high = GroupQuantileClassifier(0.8)(STATS)
    # group 0 = rows 0,1: 1,2,3,4,5,1,1,1,1 -> sorted, position 0.8 * 8 = 6.4 -> tau = 3 + 0.4 = 3.4
    assert high[0].tolist() == [False, False, False, True, True, False]
    assert not high[1].any()
    # group 1 = rows 2,3: a single valid token -> knowledge
    assert not high[2:].any()
    with pytest.raises(ConfigError, match="group_ids"):
        GroupQuantileClassifier()(TokenStats(ENTROPY, -ENTROPY, MASK))


def test_low_probability_random_and_none():
    logprobs = torch.log(torch.tensor([[0.1, 0.5, 0.9, 0.2]]))
    mask = torch.tensor([[True, True, True, False]])
    stats = TokenStats(torch.zeros(1, 4), logprobs, mask)
    # p < 0.5 strictly; the masked 0.2 is padding
    assert LowProbabilityClassifier(0.5)(stats).tolist() == [[True, False, False, False]]
    assert not NoTokenClassifier()(stats).any()
    torch.manual_seed(0)
    big = TokenStats(torch.zeros(200, 100), torch.zeros(200, 100), torch.ones(200, 100, dtype=torch.bool))
    share = RandomFractionClassifier(0.2)(big).float().mean().item()
    assert share == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize(
    "build, key",
    [
        (lambda: ResponseQuantileClassifier(1.5), "classifier.quantile"),
        (lambda: BatchQuantileClassifier(0.0), "classifier.quantile"),
        (lambda: LowProbabilityClassifier(-0.1), "classifier.threshold"),
        (lambda: RandomFractionClassifier(1.0), "classifier.fraction"),
    ],
)
def test_wrong_values_fail_at_construction_naming_the_key(build, key):
    with pytest.raises(ConfigError, match=key) as err:
        build()
    assert "(0, 1)" in str(err.value)


def test_batch_and_group_thresholds_belong_to_the_whole_mini_batch_across_ranks():
    """The 80/20 threshold is the quantile of every token of the mini-batch, on every rank:
    fitted once per mini-batch (not per micro-batch) and over the gathered tokens of all ranks."""
    from archer.thresholds import mini_batch_thresholds

    g = torch.Generator().manual_seed(0)
    entropy = torch.rand(8, 6, generator=g)
    mask = torch.arange(6) < torch.randint(1, 7, (8,), generator=g).unsqueeze(-1)
    groups = torch.arange(8) // 4
    other_rank = torch.rand(30, generator=g)  # the tokens another rank holds in this mini-batch
    everything = torch.cat([entropy[mask], other_rank])
    expected = torch.quantile(everything, 0.8)
    batch = BatchQuantileClassifier(0.8)
    tau = mini_batch_thresholds(batch, entropy, entropy, mask, groups, [torch.arange(8)],
                                gather=lambda values: torch.cat([values, other_rank]))
    torch.testing.assert_close(tau, expected.expand(8))
    # every micro-batch is classified against the mini-batch's threshold, whatever its own tokens
    for micro in (torch.arange(0, 2), torch.arange(5, 8)):
        stats = TokenStats(entropy[micro], entropy[micro], mask[micro], groups[micro], tau[micro])
        assert torch.equal(batch(stats), (entropy[micro] > expected) & mask[micro])
    # groups: one threshold per group, over the whole group even when its rows are split
    group = GroupQuantileClassifier(0.8)
    tau = mini_batch_thresholds(group, entropy, entropy, mask, groups, [torch.arange(8)], gather=lambda v: v)
    for g_id in (0, 1):
        rows = groups == g_id
        torch.testing.assert_close(tau[rows], torch.quantile(entropy[rows][mask[rows]], 0.8).expand(4))
