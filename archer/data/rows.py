"""Row forms: how one row of a data file becomes a `Sample`.

- `ArcherForm`: `{"id", "problem", "answer", ...}` (field names configurable); every other
  field goes to `Sample.info`.
- `VerlForm`: verl's RLVR rows, `{"prompt": [{"role", "content"}, ...], "reward_model":
  {"ground_truth", "style"}, "data_source", "extra_info": {"index", ...}, "ability"}`. The chat
  messages become `Sample.messages` (templates send them through the tokenizer's chat template
  as they are), the last user message's content `Sample.problem`, `reward_model.ground_truth`
  `Sample.answer` (numbers as strings, math verifiers compare strings; a code test spec as it
  is), and every field but `prompt` stays in `Sample.info` for verifiers (`reward_model`,
  `extra_info`, `data_source`, ...).

`choose_form` picks the form of a file from its first row (`format: auto`) or from the config.
"""

from __future__ import annotations

from archer.config_checks import ConfigError
from archer.data.errors import DataError
from archer.types import Sample

FORMATS = ("auto", "archer", "verl")


class ArcherForm:
    """archer's own rows: a problem, an answer and an optional id under configurable keys."""

    def __init__(self, problem_key: str = "problem", answer_key: str = "answer", id_key: str = "id"):
        self.problem_key, self.answer_key, self.id_key = problem_key, answer_key, id_key

    def sample(self, where: str, row: dict, fallback_id: str) -> Sample:
        for key in (self.problem_key, self.answer_key):
            if key not in row:
                hint = ""
                if "prompt" in row:  # most likely a verl row that lost a field, or archer's form chosen by mistake
                    hint = " (verl's form, data.source.format=verl or auto, needs 'prompt' as a list of chat messages and 'reward_model')"
                raise DataError(f"{where}: missing key {key!r} (keys: {sorted(row)}); add it or point "
                                f"data.source.problem_key / data.source.answer_key at the right field{hint}")
        problem = row[self.problem_key]
        if not isinstance(problem, str) or not problem.strip():
            raise DataError(f"{where}: {self.problem_key!r} must be a non-empty string, got {_shown(problem)}")
        if row[self.answer_key] is None:
            raise DataError(f"{where}: {self.answer_key!r} is null; every row needs the answer its verifier checks")
        info = {k: v for k, v in row.items() if k not in (self.problem_key, self.answer_key, self.id_key)}
        row_id = row.get(self.id_key)
        return Sample(fallback_id if row_id is None else str(row_id), problem, row[self.answer_key], info)


class VerlForm:
    """verl's RLVR rows: chat-message prompts and `reward_model.ground_truth`."""

    def __init__(self, id_key: str = "id"):
        self.id_key = id_key

    @staticmethod
    def matches(row: dict) -> bool:
        return isinstance(row.get("prompt"), list) and "reward_model" in row

    def sample(self, where: str, row: dict, fallback_id: str) -> Sample:
        messages = _messages(where, row.get("prompt"))
        users = [m["content"] for m in messages if m["role"] == "user"]
        if not users or not users[-1].strip():
            raise DataError(f"{where}: 'prompt' needs a user message with non-empty 'content' (roles: "
                            f"{[m['role'] for m in messages]})")
        reward = row.get("reward_model")
        if not isinstance(reward, dict):
            raise DataError(f"{where}: 'reward_model' must be an object with 'ground_truth' (verl's form), got {_shown(reward)}")
        answer = _ground_truth(where, reward.get("ground_truth"))
        info = {k: v for k, v in row.items() if k not in ("prompt", self.id_key)}
        return Sample(self._id(row) or fallback_id, users[-1], answer, info, messages=messages)

    def _id(self, row: dict) -> str | None:
        """The row's `id_key` field, else verl's `extra_info.index` (prefixed by `data_source`:
        files that mix sources number each from 0)."""
        if row.get(self.id_key) is not None:
            return str(row[self.id_key])
        extra = row.get("extra_info")
        index = extra.get("index") if isinstance(extra, dict) else None
        if index is None:
            return None
        source = row.get("data_source")
        return f"{source}-{index}" if isinstance(source, str) and source else str(index)


def _messages(where: str, prompt) -> list[dict]:
    if not isinstance(prompt, list) or not prompt:
        raise DataError(f"{where}: 'prompt' must be a non-empty list of chat messages {{'role', 'content'}}, got {_shown(prompt)}")
    messages = []
    for j, message in enumerate(prompt):
        if not isinstance(message, dict):
            raise DataError(f"{where}: 'prompt[{j}]' must be a message object {{'role', 'content'}}, got {_shown(message)}")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise DataError(f"{where}: 'prompt[{j}].{key}' must be a string, got {_shown(message.get(key))}")
        # Parquet gives every message every key seen in the column; the absent ones are None.
        messages.append({k: v for k, v in message.items() if v is not None})
    return messages


def _ground_truth(where: str, truth):
    """A math answer as a string (a list of them stays a list); a code test spec as it is."""
    if truth is None:
        raise DataError(f"{where}: 'reward_model.ground_truth' is missing or null; every row needs the answer its "
                        "verifier checks")
    if isinstance(truth, bool) or not isinstance(truth, (str, int, float, list, dict)):
        raise DataError(f"{where}: 'reward_model.ground_truth' must be a string, number, list or object, got {_shown(truth)}")
    if isinstance(truth, (int, float)):
        return str(truth)
    if isinstance(truth, list):
        return [str(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else t for t in truth]
    return truth


def _shown(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def choose_form(fmt: str, first: dict, archer: ArcherForm) -> ArcherForm | VerlForm:
    """The form of a file: `fmt` when `archer` or `verl`; for `auto`, verl's when the first row
    has a `prompt` list and `reward_model`, else archer's (whose errors then name what is missing)."""
    if fmt not in FORMATS:
        raise ConfigError(f"data.source.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    verl = VerlForm(archer.id_key)
    return verl if fmt == "verl" or (fmt == "auto" and verl.matches(first)) else archer
