"""Rows out of data files: JSON Lines, JSON, Parquet, Arrow, `save_to_disk` folders, hub ids.

Every reader returns a `RowSource`: the rows as plain dicts, each with where it came from
(`train.jsonl:3` for a line, `train.parquet, row 2` for a table row, 0-based as in
`dataset[2]`), so that any later check can name the file and the row. Which form the rows are
in (archer's or verl's) is not decided here: see archer/data/rows.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from archer.data.errors import DataError

SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow")
# owner/name, as on the Hugging Face Hub; only tried when no local file or folder has that name
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class SourceRow:
    """One row and where it came from.

    Attributes:
        where: prefix of an error about this row, e.g. `train.jsonl:3` or `train.parquet, row 2`.
        position: the row in words, e.g. `line 3` or `row 2`.
        number: the line (1-based) or row (0-based) number, for a fallback id.
        value: the row's fields.
    """

    where: str
    position: str
    number: int
    value: dict


@dataclass(frozen=True)
class RowSource:
    """The rows of one file, folder or hub split.

    Attributes:
        name: how errors name the source (the path as given, plus the split where one was chosen).
        label: the stem of fallback ids (`<label>-<number>`).
        rows: the rows in file order.
    """

    name: str
    label: str
    rows: list[SourceRow]


def read_rows(location: str, split: str = "train", hub_config: str | None = None) -> RowSource:
    """The rows at `location`: a file (by suffix), a `save_to_disk` folder, or a hub id.

    `split` chooses the split of a DatasetDict folder or of a hub dataset; `hub_config` is the
    hub dataset's configuration (`load_dataset`'s `name`)."""
    path = Path(location).expanduser()
    if path.is_dir():
        return _disk_rows(path, split)
    if path.is_file():
        readers = {".jsonl": read_jsonl, ".json": _json_rows, ".parquet": _parquet_rows, ".arrow": _arrow_rows}
        if path.suffix not in readers:
            raise DataError(f"{path}: unsupported data file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}, "
                            "a folder written by Dataset.save_to_disk, or a Hugging Face hub id")
        return readers[path.suffix](path)
    if path.suffix in SUFFIXES or not HUB_ID.match(location):
        raise DataError(f"{path}: no such data file; check data.source.train_path / data.source.heldout_path")
    from archer.data.hub import load_hub_rows

    rows = load_hub_rows(location, hub_config, split)
    name = f"{location} ({split})"
    return RowSource(name, f"{location.split('/')[-1]}-{split}", _table_rows(name, rows))


def _table_rows(name: str, rows: list) -> list[SourceRow]:
    out = []
    for index, row in enumerate(rows):
        where = f"{name}, row {index}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object of fields per row, got {type(row).__name__}")
        out.append(SourceRow(where, f"row {index}", index, row))
    return out


def read_jsonl(path: Path) -> RowSource:
    """One JSON object per non-empty line; errors name the file and the line."""
    rows = []
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
            rows.append(SourceRow(f"{path}:{line_no}", f"line {line_no}", line_no, row))
    return RowSource(str(path), path.stem, rows)


def _json_rows(path: Path) -> RowSource:
    """A JSON array of row objects, or JSON Lines (what `Dataset.to_json` writes) under a .json name."""
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("["):
        return read_jsonl(path)
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                        "a .json file holds one array of row objects, or one object per line") from err
    return RowSource(str(path), path.stem, _table_rows(str(path), rows))


def _parquet_rows(path: Path) -> RowSource:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise DataError(f"{path}: not a readable Parquet file ({err}); rewrite it with Dataset.to_parquet") from err
    return RowSource(str(path), path.stem, _table_rows(str(path), table.to_pylist()))


def _arrow_rows(path: Path) -> RowSource:
    """An Arrow stream (what `datasets` writes: `save_to_disk`'s data files, its cache) or an Arrow IPC file."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid as err:
            raise DataError(f"{path}: not an Arrow stream or IPC file ({err}); "
                            "write it with Dataset.save_to_disk (and point at the folder) or Dataset.to_parquet") from err
    return RowSource(str(path), path.stem, _table_rows(str(path), table.to_pylist()))


def _disk_rows(path: Path, split: str) -> RowSource:
    """A folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk` (then `split` picks one)."""
    if not ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        raise DataError(f"{path}: a folder, but not one written by Dataset.save_to_disk (no state.json or "
                        "dataset_dict.json); point data.source.train_path at a data file or at such a folder")
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # a damaged folder: name it rather than show datasets' traceback alone
        raise DataError(f"{path}: could not load this save_to_disk folder ({err}); write it again") from err
    name, label = str(path), path.name
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path}: a DatasetDict without split {split!r} (splits: {sorted(loaded)}); "
                            "set data.source.train_split / data.source.heldout_split")
        loaded, name, label = loaded[split], f"{path} ({split})", f"{path.name}-{split}"
    return RowSource(name, label, _table_rows(name, loaded.to_list()))
