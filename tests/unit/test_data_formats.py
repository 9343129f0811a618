"""data=files: every file format, archer's and verl's row forms, ids, errors, hub failures, chat prompts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archer.config_checks import ConfigError
from archer.data import ChatTemplate, DataError, FileData, JsonlData, PlainTemplate, load_jsonl
from archer.models import build_char_tokenizer
from archer.types import Sample
from archer.verifiers import MathVerifier

ROOT = Path(__file__).resolve().parents[2]


def verl_row(index: int, question: str, truth, source: str = "openai/gsm8k", system: str | None = None) -> dict:
    """A row as verl's data preprocessing scripts write it."""
    prompt = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return {"data_source": source, "prompt": prompt, "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": truth},
            "extra_info": {"split": "train", "index": index}}


VERL_ROWS = [verl_row(0, "What is 6 times 7?", "42", system="Reason, then answer in \\boxed{}."),
             verl_row(1, "What is 1/2 + 1/4?", "\\frac{3}{4}"), verl_row(2, "What is 10 - 3?", "7")]
ARCHER_ROWS = [{"id": "a", "problem": "1+1", "answer": "2", "level": 1}, {"id": "b", "problem": "2+2", "answer": "4", "level": 2}]


def test_verl_parquet_maps_messages_ground_truth_ids_and_keeps_the_rest(tmp_path):
    import datasets

    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(VERL_ROWS).to_parquet(str(path))
    data = FileData(str(path), heldout_size=1)
    first = data.train[0]
    assert [s.id for s in data.train + data.heldout] == ["openai/gsm8k-0", "openai/gsm8k-1", "openai/gsm8k-2"]
    assert first.problem == "What is 6 times 7?" and first.answer == "42"
    assert first.messages == VERL_ROWS[0]["prompt"]
    # nothing of the row is lost: verifiers can read reward_model's style, extra_info, data_source
    assert first.info == {k: v for k, v in VERL_ROWS[0].items() if k != "prompt"}
    # Parquet gives every message the keys of all messages: the ones a message lacked are not invented
    assert data.train[1].messages == [{"role": "user", "content": "What is 1/2 + 1/4?"}]
    verify = MathVerifier()
    for sample in data.train + data.heldout:
        assert verify(f"so \\boxed{{{sample.answer}}}", sample) == 1.0
        assert verify("so \\boxed{41}", sample) == 0.0
    assert verify("\\boxed{0.75}", data.train[1]) == 1.0  # math equivalence against the LaTeX ground truth


def test_numeric_ground_truths_become_strings_and_ids_fall_back_to_file_and_row(tmp_path):
    rows = [verl_row(0, "6*7?", 42), verl_row(1, "1+1?", [2, "two"])]
    for row in rows:
        del row["extra_info"]
    path = tmp_path / "nums.json"
    path.write_text(json.dumps(rows))
    data = FileData(str(path))
    assert [s.answer for s in data.train] == ["42", ["2", "two"]]
    assert [s.id for s in data.train] == ["nums-0", "nums-1"]  # <stem>-<0-based row>
    assert MathVerifier()("\\boxed{2}", data.train[1]) == 1.0


def test_json_arrow_and_save_to_disk_folders_load(tmp_path):
    import datasets

    dataset = datasets.Dataset.from_list(ARCHER_ROWS)
    expected = [Sample("a", "1+1", "2", {"level": 1}), Sample("b", "2+2", "4", {"level": 2})]
    (tmp_path / "array.json").write_text(json.dumps(ARCHER_ROWS))
    dataset.to_json(str(tmp_path / "lines.json"))  # datasets writes JSON Lines, even under .json
    dataset.save_to_disk(str(tmp_path / "saved"))
    arrow_file = next((tmp_path / "saved").glob("*.arrow"))  # an Arrow stream, as datasets writes them
    with pa.ipc.new_file(str(tmp_path / "ipc.arrow"), pa.Table.from_pylist(ARCHER_ROWS).schema) as writer:
        writer.write_table(pa.Table.from_pylist(ARCHER_ROWS))  # the Arrow IPC file format too
    for location in ("array.json", "lines.json", "saved", str(arrow_file), "ipc.arrow"):
        data = FileData(str(tmp_path / location), heldout_path=str(tmp_path / location))
        assert data.train == expected and data.heldout == expected, location


def test_dataset_dict_folders_read_the_split_the_config_names(tmp_path):
    import datasets

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(VERL_ROWS[:2]),
                                   "test": datasets.Dataset.from_list(VERL_ROWS[2:])})
    splits.save_to_disk(str(tmp_path / "gsm"))
    data = FileData(str(tmp_path / "gsm"), heldout_path=str(tmp_path / "gsm"))
    assert [s.problem for s in data.train] == ["What is 6 times 7?", "What is 1/2 + 1/4?"]
    assert [s.problem for s in data.heldout] == ["What is 10 - 3?"]
    with pytest.raises(DataError, match=r"gsm: a DatasetDict without split 'validation' \(splits: \['test', 'train'\]\)"
                                        r".*data\.source\.train_split"):
        FileData(str(tmp_path / "gsm"), heldout_size=1, train_split="validation")


def test_malformed_rows_name_the_file_the_row_and_the_field(tmp_path):
    bad_prompt = dict(VERL_ROWS[1], prompt=[{"role": "user", "content": 7}])
    no_truth = dict(VERL_ROWS[1], reward_model={"style": "rule"})
    no_user = dict(VERL_ROWS[1], prompt=[{"role": "system", "content": "hi"}])
    cases = {
        "missing.json": ([ARCHER_ROWS[0], {"id": "c", "problem": "3+3"}], r"missing\.json, row 1: missing key 'answer'"),
        "empty.json": ([ARCHER_ROWS[0], {"problem": "  ", "answer": "1"}], r"empty\.json, row 1: 'problem' must be a non-empty string"),
        "type.json": ([{"problem": ["1+1"], "answer": "2"}], r"type\.json, row 0: 'problem' must be a non-empty string, got list"),
        "null.json": ([{"problem": "1+1", "answer": None}], r"null\.json, row 0: 'answer' is null"),
        "content.json": ([VERL_ROWS[0], bad_prompt], r"content\.json, row 1: 'prompt\[0\]\.content' must be a string, got int"),
        "truth.json": ([VERL_ROWS[0], no_truth], r"truth\.json, row 1: 'reward_model\.ground_truth' is missing or null"),
        "user.json": ([VERL_ROWS[0], no_user], r"user\.json, row 1: 'prompt' needs a user message"),
        "scalar.json": ([ARCHER_ROWS[0], 3], r"scalar\.json, row 1: expected an object of fields per row, got int"),
        "broken.json": (None, r"broken\.json: not valid JSON"),
        "empty_list.json": ([], r"empty_list\.json: holds no rows"),
    }
    for name, (rows, message) in cases.items():
        (tmp_path / name).write_text("[{" if rows is None else json.dumps(rows))
        with pytest.raises(DataError, match=message):
            FileData(str(tmp_path / name))
    # Parquet: a column of the wrong type, in verl's form by choice
    pq.write_table(pa.Table.from_pylist([{"prompt": "6*7?", "reward_model": {"ground_truth": "42"}}]), tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet, row 0: 'prompt' must be a non-empty list of chat messages"):
        FileData(str(tmp_path / "p.parquet"), format="verl")
    # archer's form chosen for verl rows: the error says which form the row looks like
    (tmp_path / "verl.jsonl").write_text(json.dumps(VERL_ROWS[0]) + "\n")
    with pytest.raises(DataError, match=r"verl\.jsonl:1: missing key 'problem'.*verl's form"):
        FileData(str(tmp_path / "verl.jsonl"), format="archer")
    assert FileData(str(tmp_path / "verl.jsonl"), heldout_path=str(tmp_path / "verl.jsonl")).train[0].messages


def test_duplicate_ids_fail_at_load_time_naming_both_rows(tmp_path):
    lines = [{"id": 7, "problem": "1+1", "answer": "2"}, {"problem": "2+2", "answer": "4"}, {"id": "7", "problem": "3+3", "answer": "6"}]
    (tmp_path / "dup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DataError, match=r"dup\.jsonl: duplicate id '7' at line 1 and line 3; .*give each row its own id"):
        load_jsonl(tmp_path / "dup.jsonl")
    with pytest.raises(DataError, match=r"dup\.jsonl: duplicate id '7' at line 1 and line 3"):
        FileData(str(tmp_path / "dup.jsonl"), heldout_size=1)
    # verl files that repeat their rows (some upsample that way): the error says so
    pq.write_table(pa.Table.from_pylist([VERL_ROWS[0], VERL_ROWS[1], VERL_ROWS[0]]), tmp_path / "rep.parquet")
    with pytest.raises(DataError, match=r"rep\.parquet: duplicate id 'openai/gsm8k-0' at row 0 and row 2.*same problem"):
        FileData(str(tmp_path / "rep.parquet"))
    # an explicit id that equals another row's fallback id is a duplicate too
    (tmp_path / "f.jsonl").write_text('{"problem": "1", "answer": "1"}\n{"id": "f-1", "problem": "2", "answer": "2"}\n')
    with pytest.raises(DataError, match=r"duplicate id 'f-1' at line 1 and line 2"):
        load_jsonl(tmp_path / "f.jsonl")


def test_bad_paths_and_settings_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"missing\.parquet: no such data file; check data\.source\.train_path"):
        FileData(str(tmp_path / "missing.parquet"))
    (tmp_path / "rows.csv").write_text("problem,answer\n1+1,2\n")
    with pytest.raises(DataError, match=r"unsupported data file type '\.csv'; use one of \.jsonl, \.json, \.parquet, \.arrow"):
        FileData(str(tmp_path / "rows.csv"))
    (tmp_path / "plain_folder").mkdir()
    with pytest.raises(DataError, match=r"plain_folder: a folder, but not one written by Dataset\.save_to_disk"):
        FileData(str(tmp_path / "plain_folder"))
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"fake\.parquet: not a readable Parquet file"):
        FileData(str(tmp_path / "fake.parquet"))
    (tmp_path / "ok.jsonl").write_text(json.dumps(ARCHER_ROWS[0]) + "\n")
    with pytest.raises(ConfigError, match=r"data\.source\.format must be one of auto, archer, verl, got 'sharegpt'"):
        FileData(str(tmp_path / "ok.jsonl"), format="sharegpt")
    with pytest.raises(DataError, match=r"1 rows cannot give data\.source\.heldout_size=1"):
        FileData(str(tmp_path / "ok.jsonl"), heldout_size=1)


def test_jsonl_data_keeps_its_positional_arguments_and_results(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ARCHER_ROWS))
    old = JsonlData(str(path), None, 1, "problem", "answer", "id")
    assert old.train == [Sample("a", "1+1", "2", {"level": 1})] and old.heldout == [Sample("b", "2+2", "4", {"level": 2})]


def test_hub_ids_fail_fast_offline_with_what_to_do():
    """HF_HUB_OFFLINE=1 and a dataset not in the cache: a DataError in seconds, not minutes of retries.
    A fresh process, because `datasets` reads the variable when it is first imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-archer-hf-home"}
    code = "from archer.data import FileData; FileData('openai/gsm8k', hub_config='main')"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert time.monotonic() - started < 60
    assert done.returncode != 0 and "DataError: openai/gsm8k: no such local file or folder" in done.stderr, done.stderr
    assert "load_dataset('openai/gsm8k', 'main', split='train').to_parquet('gsm8k_train.parquet')" in done.stderr
    assert "data.source.train_path" in done.stderr


def test_an_unreachable_hub_fails_before_datasets_retries(monkeypatch):
    from archer.data import hub

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_SECONDS: False)
    with pytest.raises(DataError, match=r"cannot be reached from this machine.*save_to_disk.*HF_HUB_OFFLINE=1"):
        FileData("openai/gsm8k", hub_config="main")


def test_the_hub_probe_sees_an_open_port_and_a_closed_one(monkeypatch):
    from archer.data.hub import hub_reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub_reachable(timeout=2)
    assert not hub_reachable(timeout=2)  # the same port, closed now


CHAT = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_prompts_use_the_chat_template_as_they_are():
    sample = Sample("x", "What is 6 times 7?", "42", messages=VERL_ROWS[0]["prompt"])
    archer_sample = Sample("y", "1+1", "2")
    template = ChatTemplate(instruction="Box it.", system="Be brief.")
    tok = build_char_tokenizer()
    tok.chat_template = CHAT
    # the messages, untouched (no archer instruction or system), then the assistant's turn
    assert template.text(sample, tok) == ("<|system|>Reason, then answer in \\boxed{}.\n"
                                          "<|user|>What is 6 times 7?\n<|assistant|>")
    assert tok.decode(template.encode(sample, tok)) == template.text(sample, tok)
    assert template.text(archer_sample, tok) == "<|system|>Be brief.\n<|user|>1+1 Box it.\n<|assistant|>"


def test_without_a_chat_template_messages_fill_the_plain_format():
    sample = Sample("x", "What is 6 times 7?", "42", messages=VERL_ROWS[0]["prompt"])
    tok = build_char_tokenizer()  # the tiny default: no chat template
    joined = "Reason, then answer in \\boxed{}.\n\nWhat is 6 times 7?"
    assert ChatTemplate(instruction="Box it.").text(sample, tok) == f"Question: {joined}\nAnswer: "
    ids = ChatTemplate().encode(sample, tok)
    assert ids[0] == tok.bos_token_id and tok.decode(ids[1:]) == f"Question: {joined}\nAnswer: "
    assert PlainTemplate("{problem}\n").text(sample, tok) == f"{joined}\n"


def test_worked_examples_are_earlier_turns_with_the_same_instruction():
    examples = [{"problem": "2+2", "response": "2 + 2 = 4. The answer is 4."},
                {"problem": "9-3", "response": "9 - 3 = 6. The answer is 6."}]
    template = ChatTemplate(instruction="Box it.", system="Be brief.", examples=examples)
    tok = build_char_tokenizer()
    tok.chat_template = CHAT
    assert template.text(Sample("y", "1+1", "2"), tok) == (
        "<|system|>Be brief.\n"
        "<|user|>2+2 Box it.\n<|assistant|>2 + 2 = 4. The answer is 4.\n"
        "<|user|>9-3 Box it.\n<|assistant|>9 - 3 = 6. The answer is 6.\n"
        "<|user|>1+1 Box it.\n<|assistant|>")
    # without a chat template: the fallback format, once per example, then the problem
    plain = ChatTemplate(instruction="", examples=examples[:1]).text(Sample("y", "1+1", "2"), build_char_tokenizer())
    assert plain == "Question: 2+2\nAnswer: 2 + 2 = 4. The answer is 4.\n\nQuestion: 1+1\nAnswer: "
    # rows with their own messages are sent as they are
    verl = Sample("x", "What is 6 times 7?", "42", messages=VERL_ROWS[0]["prompt"])
    assert "2+2" not in template.text(verl, tok)


@pytest.mark.parametrize("bad", [[{"problem": "2+2"}], [{"problem": "", "response": "4"}], ["2+2 = 4"],
                                 [{"problem": "2+2", "response": 4}]])
def test_malformed_worked_examples_are_refused_by_index(bad):
    with pytest.raises(ValueError, match=r"data.template.examples\[0\]"):
        ChatTemplate(examples=bad)
