"""`data=files`: train and held-out `Sample`s from data files, `save_to_disk` folders or hub ids.

Where rows come from is archer/data/readers.py (and hub.py); what a row means is
archer/data/rows.py (archer's form or verl's). This file ties them together and enforces what
the rest of archer relies on: every split has rows, and ids are unique within a split
(validation summaries and pass@k group responses by id, so two problems sharing one id would
be silently merged).

Ids: a row's `id_key` field when present; for verl rows without one, `extra_info.index`
(as `<data_source>-<index>`); else `<file stem>-<line>` for JSON Lines and `<file stem>-<row>`
for tables (0-based rows; a split's name is added for DatasetDict folders and hub datasets).
"""

from __future__ import annotations

from dataclasses import dataclass

from archer.config_checks import ConfigError
from archer.data.errors import DataError
from archer.data.readers import RowSource, read_rows
from archer.data.rows import FORMATS, ArcherForm, choose_form
from archer.types import Sample


def samples_from_rows(source: RowSource, fmt: str, archer: ArcherForm) -> list[Sample]:
    """The `Sample` of every row of `source` in form `fmt` (auto, archer, verl); ids must be unique."""
    if not source.rows:
        raise DataError(f"{source.name}: holds no rows")
    form = choose_form(fmt, source.rows[0].value, archer)
    samples = [form.sample(row.where, row.value, f"{source.label}-{row.number}") for row in source.rows]
    reject_duplicate_ids(source, samples)
    return samples


def reject_duplicate_ids(source: RowSource, samples: list[Sample]) -> None:
    """Fail on the first id two rows share, naming the source and both rows."""
    first_seen: dict[str, int] = {}
    for index, sample in enumerate(samples):
        earlier = first_seen.setdefault(sample.id, index)
        if earlier == index:
            continue
        a, b = samples[earlier], sample
        same = (a.problem, a.answer, a.messages) == (b.problem, b.answer, b.messages)
        why = ("the two rows hold the same problem and answer: drop the repeats (e.g. pandas drop_duplicates)"
               if same else "give each row its own id, or remove the id field to let archer number the rows")
        raise DataError(f"{source.name}: duplicate id {sample.id!r} at {source.rows[earlier].position} and "
                        f"{source.rows[index].position}; ids must be unique (validation groups responses by id): {why}")


@dataclass
class FileData:
    """Train and held-out prompts from files, `save_to_disk` folders or hub datasets.

    Args:
        train_path: the training prompts: a .jsonl, .json, .parquet or .arrow file, a folder
            written by `save_to_disk`, or a hub id such as `openai/gsm8k`.
        heldout_path: held-out prompts (same choices); when None, the last `heldout_size`
            training rows.
        heldout_size: size of the held-out split cut from training rows (if no held-out path).
        problem_key, answer_key, id_key: field names in archer-form rows (`id_key` in verl rows too).
        format: `auto` (verl's form when the first row has a `prompt` list and `reward_model`,
            else archer's), `archer` or `verl`.
        train_split, heldout_split: the split read from a DatasetDict folder or a hub dataset.
        hub_config: the hub dataset's configuration (`load_dataset`'s `name`), e.g. `main`.
    """

    train_path: str
    heldout_path: str | None = None
    heldout_size: int = 0
    problem_key: str = "problem"
    answer_key: str = "answer"
    id_key: str = "id"
    format: str = "auto"
    train_split: str = "train"
    heldout_split: str = "test"
    hub_config: str | None = None

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ConfigError(f"data.source.format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.heldout_size < 0:
            raise ConfigError(f"data.source.heldout_size must be >= 0, got {self.heldout_size}")
        rows = self._load(self.train_path, self.train_split)
        if self.heldout_path:
            self.train, self.heldout = rows, self._load(self.heldout_path, self.heldout_split)
        else:
            cut = len(rows) - self.heldout_size
            if cut < 1:
                raise DataError(f"{self.train_path}: {len(rows)} rows cannot give data.source.heldout_size="
                                f"{self.heldout_size}; lower it or set data.source.heldout_path")
            self.train, self.heldout = rows[:cut], rows[cut:]

    def _load(self, location: str, split: str) -> list[Sample]:
        source = read_rows(str(location), split, self.hub_config)
        return samples_from_rows(source, self.format, ArcherForm(self.problem_key, self.answer_key, self.id_key))
