"""Token-budget micro-batches: padded size within the budget, every row once, longest first."""

from __future__ import annotations

import torch

from archer.packing import fixed_micro_batches, token_budget_micro_batches


def test_packing_respects_the_padded_budget_and_keeps_every_row_once():
    tokens = torch.tensor([30, 5, 12, 40, 7, 7, 25, 3, 90, 11])
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 9])  # row 8 belongs to another mini-batch
    batches = token_budget_micro_batches(rows, tokens, budget=64)
    assert sorted(torch.cat(batches).tolist()) == rows.tolist()
    for micro in batches:
        lengths = tokens[micro]
        assert lengths.tolist() == sorted(lengths.tolist(), reverse=True)  # longest first
        assert len(micro) * int(lengths.max()) <= 64
    # hand-packed: [40] alone (2 x 40 > 64), [30, 25] = 2 x 30, [12, 11, 7, 7, 5] = 5 x 12, [3]? no: 6 x 12 > 64
    assert [tokens[m].tolist() for m in batches] == [[40], [30, 25], [12, 11, 7, 7, 5], [3]]


def test_a_row_longer_than_the_budget_gets_its_own_micro_batch_and_fixed_sizes_split_in_order():
    tokens = torch.tensor([100, 10, 10])
    assert [m.tolist() for m in token_budget_micro_batches(torch.arange(3), tokens, 50)] == [[0], [1, 2]]
    assert [m.tolist() for m in fixed_micro_batches(torch.arange(5), 2)] == [[0, 1], [2, 3], [4]]
    assert token_budget_micro_batches(torch.zeros(0, dtype=torch.long), tokens, 50) == []
