"""archer's JSON Lines loader, kept for existing code: `load_jsonl` and `JsonlData` (`data=jsonl`).

Both are now thin names over archer/data/files.py, which reads every format; JSON Lines
errors still name the file and the line (`train.jsonl:3: missing key 'answer'`).
"""

from __future__ import annotations

from pathlib import Path

from archer.data.errors import DataError
from archer.data.files import FileData, samples_from_rows
from archer.data.readers import read_jsonl
from archer.data.rows import ArcherForm
from archer.types import Sample

__all__ = ["DataError", "JsonlData", "load_jsonl"]


def load_jsonl(
    path: str | Path, problem_key: str = "problem", answer_key: str = "answer", id_key: str = "id"
) -> list[Sample]:
    """Read one archer-form `Sample` per non-empty line; every other field goes to `Sample.info`.

    Raises:
        DataError: the file is missing, a line is not a JSON object, a key is missing, or two
            lines share an id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file; check data.source.train_path / data.source.heldout_path")
    return samples_from_rows(read_jsonl(path), "archer", ArcherForm(problem_key, answer_key, id_key))


class JsonlData(FileData):
    """The former name of `FileData` (same arguments, same behaviour on JSON Lines files)."""
