"""Load `Sample`s from JSON Lines, failing on malformed rows with the file and line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from archer.types import Sample


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line and the fix."""


def load_jsonl(
    path: str | Path, problem_key: str = "problem", answer_key: str = "answer", id_key: str = "id"
) -> list[Sample]:
    """Read one `Sample` per non-empty line; every other field goes to `Sample.info`.

    Raises:
        DataError: the file is missing, a line is not a JSON object, or a key is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file; check data.train_path / data.heldout_path")
    samples = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg}); fix or remove that line") from err
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object per line, got {type(row).__name__}")
            for key in (problem_key, answer_key):
                if key not in row:
                    raise DataError(
                        f"{path}:{line_no}: missing key {key!r} (keys: {sorted(row)}); "
                        f"add it or point data.problem_key / data.answer_key at the right field"
                    )
            if not isinstance(row[problem_key], str) or not row[problem_key].strip():
                raise DataError(f"{path}:{line_no}: {problem_key!r} must be a non-empty string")
            info = {k: v for k, v in row.items() if k not in (problem_key, answer_key, id_key)}
            sample_id = str(row.get(id_key, f"{path.stem}-{line_no}"))
            samples.append(Sample(id=sample_id, problem=row[problem_key], answer=row[answer_key], info=info))
    if not samples:
        raise DataError(f"{path}: holds no rows")
    return samples


@dataclass
class JsonlData:
    """Train and held-out prompts from JSONL files.

    Args:
        train_path: the training prompts.
        heldout_path: held-out prompts; when None, the last `heldout_size` training rows.
        heldout_size: size of the held-out split cut from training rows (if no file).
        problem_key, answer_key, id_key: field names in the rows.
    """

    train_path: str
    heldout_path: str | None = None
    heldout_size: int = 0
    problem_key: str = "problem"
    answer_key: str = "answer"
    id_key: str = "id"

    def __post_init__(self):
        keys = dict(problem_key=self.problem_key, answer_key=self.answer_key, id_key=self.id_key)
        rows = load_jsonl(self.train_path, **keys)
        if self.heldout_path:
            self.train, self.heldout = rows, load_jsonl(self.heldout_path, **keys)
        else:
            cut = len(rows) - self.heldout_size
            if cut < 1:
                raise DataError(f"{self.train_path}: {len(rows)} rows cannot give data.heldout_size={self.heldout_size}")
            self.train, self.heldout = rows[:cut], rows[cut:]
