"""Tabular row files (JSONL, CSV/TSV, Parquet) read record by record; undecodable records become markers.

Shared by the local manifest and URL-list sources so both treat a non-UTF-8 line or a broken JSON line the
same way: the record is reported (and later rejected with a reason), the rest of the file is still read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.parquet as pq

from surd import storage
from surd.options import config, option

FORMATS = ("auto", "jsonl", "csv", "tsv", "parquet")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
            ".parquet": "parquet"}
BAD = "__bad_row__"  # key of a marker record: (sha1 of the raw bytes, reason, detail)


def resolve_format(path: str, fmt: str) -> str | None:
    return fmt if fmt != "auto" else SUFFIXES.get(Path(storage.basename(path)).suffix.lower())


def check_table(path: str, fmt: str, what: str) -> None:
    """Validate a table file argument; messages name the fix."""
    if not path:
        raise ValueError(f"no {what} given: pass the path of a .jsonl, .csv, .tsv or .parquet file")
    if storage.isdir(path):
        raise ValueError(f"{path} is a folder, not a {what} file: pass the .jsonl, .csv, .tsv or .parquet file (a "
                         "folder of images with a metadata file is `surd ingest folder`)")
    if not storage.isfile(path):
        where = "check the URL and your credentials" if storage.is_remote(path) else f"relative to {os.getcwd()}"
        raise FileNotFoundError(f"{what} {path} not found: check the path ({where})")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if resolve_format(path, fmt) is None:
        raise ValueError(f"cannot tell the format of {path} from its suffix: pass format=jsonl|csv|tsv|parquet")


@config
class TableFile:
    """A source read from one table file (a manifest, a URL list): the file and its format, checked on
    construction. ``WHAT`` names the file in messages."""

    WHAT: ClassVar[str] = "table"
    path: str = option("", help="A .jsonl, .csv, .tsv or .parquet file, one row per sample.", cli=False)
    format: str = option("auto", help="File format (auto = from the extension).", choices=FORMATS)

    def __post_init__(self) -> None:
        check_table(self.path, self.format, self.WHAT)


# What each column option of a row source names (its help: "Column with …"); a source picks the ones it reads.
COLUMNS = {
    "image_col": "the image", "url_col": "the image URL", "prompt_col": "the complex (keyword) prompt",
    "caption_col": "the prompt", "negative_col": "the negative prompt, if any", "simple_col": "a simple prompt, if any",
    "id_col": "a stable id", "source_col": "each row's source, if any", "license_col": "each row's license, if any",
    "provenance_col": "each row's provenance, if any",
}


def columns(**given: str | tuple[str, str]) -> type:
    """A config base declaring the column options a source reads, in the order given: ``name=default``, or
    ``name=(default, note)`` where the note says what the default (or '') means; the help comes from `COLUMNS`.
    A plain frozen dataclass: the source's own `config` class checks the fields, and its ``super().__post_init__()``
    reaches the next base (`TableFile`)."""
    body: dict[str, Any] = {"__annotations__": {}, "__module__": __name__, "__doc__": "A source's column options."}
    for name, value in given.items():
        default, note = value if isinstance(value, tuple) else (value, "")
        body["__annotations__"][name] = str
        body[name] = option(default, help=f"Column with {COLUMNS[name]}" + (f" ({note})." if note else "."))
    return dataclass(frozen=True)(type("Columns", (), body))


def _bad(raw: bytes, reason: str, detail: str) -> dict[str, Any]:
    return {BAD: (hashlib.sha1(raw).hexdigest(), reason, detail)}


def _read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with storage.open_file(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield _bad(raw, "bad_encoding", f"line {lineno}: not UTF-8 ({e.reason})")
                continue
            except json.JSONDecodeError as e:
                yield _bad(raw, "bad_row", f"line {lineno}: {e}")
                continue
            yield obj if isinstance(obj, dict) else _bad(raw, "bad_row", f"line {lineno}: not an object")


def _lines(path: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The file's lines with their endings, split like bytes.splitlines (\\n, \\r\\n, \\r), read chunk by chunk."""
    rest = b""
    with storage.open_file(path, "rb") as f:
        while data := f.read(chunk):
            lines = (rest + data).splitlines(keepends=True)
            rest = lines.pop()  # may be cut (or a \r whose \n is in the next chunk): finished with the next chunk
            yield from lines
    if rest:
        yield rest


def _read_csv(path: str, delimiter: str) -> Iterator[dict[str, Any]]:
    bad: list[dict[str, Any]] = []  # undecodable lines are kept aside (few) and reported after the good records

    def decoded() -> Iterator[str]:
        for lineno, raw in enumerate(_lines(path), 1):
            try:
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                bad.append(_bad(raw, "bad_encoding", f"line {lineno}: not UTF-8 ({e.reason})"))

    yield from csv.DictReader(decoded(), delimiter=delimiter)
    yield from bad


def _read_parquet(path: str) -> Iterator[dict[str, Any]]:
    with storage.open_file(path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=8192, use_threads=False):
            yield from batch.to_pylist()


def read_records(path: str | Path, fmt: str) -> Iterator[dict[str, Any]]:
    """Records as dicts, in file order, streamed (CSV lines that are not UTF-8 come last, as markers)."""
    fmt, path = resolve_format(str(path), fmt) or fmt, storage.normalize(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, "," if fmt == "csv" else "\t")
    return _read_parquet(path)


def text(v: Any) -> str | None:
    """A cell as text; None and NaN are None."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return str(v)
