"""Data loading, the synthetic task, templates and the prompt stream."""

import pytest

from archer.data import DataError, PlainTemplate, PromptStream, SyntheticArithmetic, load_jsonl
from archer.data.synthetic import solve_chain
from archer.models import build_char_tokenizer
from archer.types import Sample
from archer.verifiers import ArithmeticVerifier


def test_load_jsonl_keeps_extra_fields_and_names_file_and_line_on_errors(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": 7, "problem": "1+1", "answer": "2", "level": 3}\n\n{"problem": "2+2", "answer": "4"}\n')
    rows = load_jsonl(good)
    assert rows[0] == Sample("7", "1+1", "2", {"level": 3}) and rows[1].id == "good-3"
    cases = {
        '{"problem": "x"}\n': r"bad\.jsonl:1: missing key 'answer'",
        '{"problem": "x", "answer": 1}\n[1, 2]\n': r"bad\.jsonl:2: expected a JSON object",
        '{"problem": "", "answer": 1}\n': r"bad\.jsonl:1: 'problem' must be a non-empty string",
        "\n\n": r"bad\.jsonl: holds no rows",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(DataError, match=message):
            load_jsonl(bad)
    with pytest.raises(DataError, match="no such data file"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_synthetic_task_is_deterministic_disjoint_and_verifiable():
    task = SyntheticArithmetic(train_size=300, heldout_size=50, slip_rate=0.3)
    again = SyntheticArithmetic(train_size=300, heldout_size=50, slip_rate=0.3)
    assert task.train == again.train
    assert not {s.problem for s in task.train} & {s.problem for s in task.heldout}
    verify = ArithmeticVerifier()
    assert all(verify(s.info["solution"], s) == 1.0 for s in task.train)
    # the noisy teacher is wrong on some demonstrations, and only those
    slipped = [s for s in task.train if s.info["demonstration"] != s.info["solution"]]
    assert 0.2 < len(slipped) / len(task.train) < 0.9
    assert solve_chain([3, 8, 7]) == ("3+8=11\n11+7=18\n#18", 18)


def test_arithmetic_verifier_needs_the_exact_final_line():
    sample = Sample("a", "3+8+7", 18)
    verify = ArithmeticVerifier()
    assert verify("3+8=11\n11+7=18\n#18", sample) == 1.0
    assert verify("#18\n", sample) == 1.0
    assert verify("3+8=11\n11+7=18\n#17", sample) == 0.0
    assert verify("#18\n#19", sample) == 0.0  # only the last answer counts
    assert verify("18", sample) == 0.0
    assert verify("#" + "9" * 10_000, sample) == 0.0  # hostile output: bounded work


def test_plain_template_and_prompt_stream():
    tok = build_char_tokenizer()
    ids = PlainTemplate("{problem}\n").encode(Sample("a", "1+2", 3), tok)
    assert ids[0] == tok.bos_token_id and tok.decode(ids[1:]) == "1+2\n"
    with pytest.raises(ValueError, match="problem"):
        PlainTemplate("no placeholder")
    samples = [Sample(str(i), str(i), i) for i in range(10)]
    stream = PromptStream(samples, prompts_per_step=4, seed=3)
    # one pass covers every sample once; the stream is a pure function of (seed, step)
    first_pass = [s.id for step in range(2) for s in stream.batch(step)] + [s.id for s in stream.batch(2)[:2]]
    assert sorted(first_pass) == sorted(s.id for s in samples)
    assert PromptStream(samples, 4, seed=3).batch(7) == stream.batch(7)
    assert PromptStream(samples, 4, seed=4).batch(0) != stream.batch(0)
    assert stream.refill(5, 0, 3) == PromptStream(samples, 4, seed=3).refill(5, 0, 3)


def test_refills_are_drawn_globally_and_sharded_over_ranks():
    from archer.data.stream import PromptStream
    from archer.types import Sample

    samples = [Sample(str(i), f"p{i}", i) for i in range(50)]
    stream = PromptStream(samples, prompts_per_step=8, seed=3)
    used = {s.id for s in stream.batch(4)}
    one = [s.id for s in stream.refill(4, 0, 6)]
    ranks = [[s.id for s in stream.refill(4, 0, 3, rank, 2)] for rank in range(2)]
    assert not set(ranks[0]) & set(ranks[1])  # never the same prompt on two ranks
    assert set(ranks[0]) | set(ranks[1]) == set(one)  # together: one process's draw
    assert not used & set(one)  # never one of the step's own prompts
    assert [s.id for s in stream.refill(4, 1, 6)] != one  # each attempt draws anew
