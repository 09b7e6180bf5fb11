"""Reading row tables (surd.sources.tables): JSONL, CSV/TSV and Parquet, a bad line becoming a row with its reason
instead of an error that loses the file."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from surd.options import ConfigError, cli_params, config, option
from surd.sources.tables import BAD, TableFile, check_table, columns, read_records, resolve_format, text


def test_jsonl_keeps_good_lines_and_marks_bad_ones_with_a_reason(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{broken\n[1, 2]\n\n\xff\xfe\n{"a": 2}\n')
    rows = list(read_records(str(path), "auto"))
    good = [r for r in rows if BAD not in r]
    assert [r["a"] for r in good] == [1, 2]
    assert len(rows) - len(good) == 3  # the broken line, the non-object and the undecodable bytes
    assert all(len(r[BAD]) == 3 and r[BAD][1] for r in rows if BAD in r)


def test_csv_tsv_and_parquet_read_the_same_rows(tmp_path):
    (tmp_path / "m.csv").write_text("image,complex_prompt\na.jpg,a cat\nb.jpg,a dog\n")
    (tmp_path / "m.tsv").write_text("image\tcomplex_prompt\na.jpg\ta cat\nb.jpg\ta dog\n")
    pq.write_table(pa.table({"image": ["a.jpg", "b.jpg"], "complex_prompt": ["a cat", "a dog"]}), tmp_path / "m.parquet")
    got = [[(r["image"], r["complex_prompt"]) for r in read_records(str(tmp_path / f"m.{ext}"), "auto")]
           for ext in ("csv", "tsv", "parquet")]
    assert got[0] == got[1] == got[2] == [("a.jpg", "a cat"), ("b.jpg", "a dog")]
    assert resolve_format("x.parquet", "auto") == "parquet" and text(None) is None and text(3) == "3"


def test_check_table_names_the_missing_file_and_unknown_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl not found"):
        check_table(str(tmp_path / "nope.jsonl"), "auto", "manifest")
    (tmp_path / "m.xlsx").write_text("x")
    with pytest.raises(ValueError):
        check_table(str(tmp_path / "m.xlsx"), "auto", "manifest")


def test_columns_declares_each_option_with_its_default_help_and_note_and_the_table_file_is_still_checked(tmp_path):
    @config
    class Cfg(columns(image_col=("img", "a path"), negative_col="neg"), TableFile):
        extra: str = option("x", help="Own option.")

        def __post_init__(self) -> None:
            super().__post_init__()  # TableFile's check of the file, through the columns base

    params = {p.name: p.parameter.default for p in cli_params(Cfg)}
    assert [p.name for p in cli_params(Cfg)] == ["format", "image_col", "negative_col", "extra"]
    assert params["image_col"].default == "img" and params["image_col"].help == "Column with the image (a path)."
    assert params["negative_col"].help == "Column with the negative prompt, if any."
    (tmp_path / "m.csv").write_text("img\na.jpg\n")
    assert Cfg(path=str(tmp_path / "m.csv")).negative_col == "neg"
    with pytest.raises(FileNotFoundError):
        Cfg(path=str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="image_col must be a string"):
        Cfg(path=str(tmp_path / "m.csv"), image_col=3)
