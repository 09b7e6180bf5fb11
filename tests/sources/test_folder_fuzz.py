"""Fuzzing folder metadata (hypothesis): any file_name gives a row that names an image inside the folder or is
rejected with a reason, and ingest turns each into a kept sample or a rejection."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surd.sources import folder
from surd.stages import ingest
from tests.conftest import jpeg_bytes
from tests.sources.test_manifest_fuzz import SCALARS, ingest_rows

NAMES = st.one_of(
    SCALARS,
    st.sampled_from(["a", "a.png", "b.png", "link", "link.png", "sub/secret", "sub/secret.png", "..", "../x.png",
                     "/etc/passwd", "image/a", "images/../a.png", "a\\..\\..\\x", "http://x/a.png", "./a.png",
                     "a.png/", "dir", "A.PNG", "\x00", " a.png", "loop", "loop.png"]),
)
LINES = st.lists(st.one_of(st.fixed_dictionaries({"file_name": NAMES, "prompt": SCALARS, "text": SCALARS}),
                           st.binary(max_size=30)), min_size=1, max_size=10)


def _tree(root):
    (root / "outside").mkdir()
    (root / "outside" / "secret.png").write_bytes(jpeg_bytes(48, 48))
    data = root / "data"
    (data / "dir").mkdir(parents=True)
    (data / "a.png").write_bytes(jpeg_bytes(48, 48))
    (data / "b.png").write_bytes(b"not an image")
    os.symlink(root / "outside" / "secret.png", data / "link.png")
    os.symlink(root / "outside", data / "sub")
    os.symlink(data / "loop.png", data / "loop.png")  # a symlink loop
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_any_folder_metadata_row_is_inside_or_rejected(tmp_path_factory, lines):
    data = _tree(tmp_path_factory.mktemp("fd"))
    (data / "metadata.jsonl").write_bytes(b"\n".join(json.dumps(r).encode() if isinstance(r, dict) else r
                                                     for r in lines) + b"\n")
    try:
        rows = list(folder.list_rows(folder.Config(path=str(data))))
    except ValueError as e:  # the first record lacks a column: one clear error naming the option
        assert "--image-col" in str(e) or "--prompt-col" in str(e), e
        return
    for row in rows:
        if row["error"] is None:
            assert os.path.realpath(row["image"]).startswith(str(data.resolve()) + os.sep)
        else:
            assert row["error_detail"]
    results = ingest_rows(rows, ingest.Config(source="folder", path=str(data), size=32, min_size=1))
    assert len(results) == len(rows) and all(isinstance(r, dict) or r.reason for r in results)
