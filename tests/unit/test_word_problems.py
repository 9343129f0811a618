"""GSM8K and SVAMP ship with the package: counts, answers, and a fixed SVAMP split."""

from __future__ import annotations

from archer.data import load_benchmark


def test_word_problem_sets_load_with_their_counts_and_integer_like_answers():
    counts = {"gsm8k": 1319, "gsm8k_train": 7473, "svamp": 1000, "svamp_train": 700, "svamp_test": 300}
    for name, count in counts.items():
        samples = load_benchmark(name)
        assert len(samples) == count, name
        assert len({s.id for s in samples}) == count and all(s.info["kind"] == "math" for s in samples)
    gsm8k = load_benchmark("gsm8k")
    assert gsm8k[0].answer == "18" and all("," not in s.answer for s in gsm8k)
    assert load_benchmark("svamp")[0].info["type"] == "Subtraction"


def test_svamp_split_is_disjoint_complete_and_fixed():
    train = [s.id for s in load_benchmark("svamp_train")]
    test = [s.id for s in load_benchmark("svamp_test")]
    assert not set(train) & set(test) and set(train) | set(test) == {s.id for s in load_benchmark("svamp")}
    # the seed-0 split: pinned so that a change to it cannot pass unnoticed
    assert train == [s.id for s in load_benchmark("svamp_train")]  # the same on every load
    assert (train[:3], test[:3]) == (PINNED_TRAIN, PINNED_TEST)


PINNED_TRAIN = ["chal-1", "chal-3", "chal-4"]
PINNED_TEST = ["chal-2", "chal-13", "chal-14"]


def test_one_operation_subsets_keep_exactly_the_one_operator_problems_of_each_split():
    import re

    for part in ("train", "test"):
        whole, subset = load_benchmark(f"svamp_{part}"), load_benchmark(f"svamp1_{part}")
        operators = {s.id: len(re.findall(r"[-+*/]", s.info["equation"])) for s in whole}
        assert [s.id for s in subset] == [s.id for s in whole if operators[s.id] == 1]
        assert 0 < len(subset) < len(whole)
    assert (len(load_benchmark("svamp1_train")), len(load_benchmark("svamp1_test"))) == (530, 232)


def test_benchmark_data_trains_on_one_benchmark_and_holds_out_a_disjoint_one():
    import pytest

    from archer.data import BenchmarkData, DataError

    data = BenchmarkData("svamp1_train", "svamp1_test", heldout_limit=50)
    assert len(data.train) == 530 and len(data.heldout) == 50
    with pytest.raises(DataError, match="share 530 problem"):
        BenchmarkData("svamp1_train", "svamp_train")


def test_svamp_problems_carry_their_gold_equation_as_a_worked_answer():
    from archer.data.benchmarks import equation_solution

    first = load_benchmark("svamp1_train")[0]
    assert (first.info["equation"], first.answer) == ("( 76.0 - 25.0 )", "51")
    assert first.info["solution"] == "76 - 25 = 51. The answer is 51."
    assert equation_solution("( ( 4.0 - 2.0 ) + 3.0 )", "5") == "(4 - 2) + 3 = 5. The answer is 5."
    assert equation_solution("( 5.0 / 4.0 )", "1.25") == "5 / 4 = 1.25. The answer is 1.25."
    # an equation that disagrees with its answer, or is not arithmetic, gives no demonstration
    assert equation_solution("( ( 4.0 - 2.0 ) + 3.0 )", "1") is None
    for hostile in ("__import__('os').system('true')", "( 5.0 / 0.0 )", "2 ** 99", "x + 1", "(", "1e999 - 1e999"):
        assert equation_solution(hostile, "1") is None, hostile
    svamp = load_benchmark("svamp")
    assert sum("solution" in s.info for s in svamp) == 999  # one SVAMP row's equation is not its answer


def test_worked_examples_come_from_a_benchmark_in_the_order_asked_and_refuse_unknown_ids():
    import pytest

    from archer.data import DataError
    from archer.data.benchmarks import worked_examples

    examples = worked_examples("svamp1_train", ["chal-10", "chal-1"])
    assert examples[1] == {"problem": load_benchmark("svamp1_train")[0].problem,
                           "response": "76 - 25 = 51. The answer is 51."}
    assert examples[0]["response"] == "9 + 12 = 21. The answer is 21."
    with pytest.raises(DataError, match="no problem 'chal-9999' in benchmark 'svamp1_train'"):
        worked_examples("svamp1_train", ["chal-9999"])
    held_out = load_benchmark("svamp1_test")[0].id  # not in the training benchmark
    with pytest.raises(DataError, match=held_out):
        worked_examples("svamp1_train", [held_out])
    with pytest.raises(DataError, match="no worked solution"):
        worked_examples("amc23", [load_benchmark("amc23")[0].id])  # answers only
