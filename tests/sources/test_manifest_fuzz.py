"""Fuzzing manifests (hypothesis): whatever the lines hold, each becomes a kept sample or a rejection with a reason
after ingest; the only whole-file error is a missing column, named with the option to set."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surd.sample import make_key
from surd.sources import manifest
from surd.stages import ingest
from tests.conftest import jpeg_bytes

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
REFS = st.one_of(
    SCALARS,
    st.sampled_from(["img/ok.jpg", "img/link.jpg", "../outside/secret.jpg", "/etc/passwd", "file:///etc/hostname",
                     "img/", "img", "http://[::1", "https://example.invalid:99999/x.jpg", "zip://x", "s3://",
                     "img/ok.jpg\x00", "IMG/OK.JPG", "img/./ok.jpg", "img/../img/ok.jpg", "~/x.jpg", ""]),
    st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
)
RECORDS = st.fixed_dictionaries({"image": REFS, "complex_prompt": SCALARS},
                                optional={"source_id": SCALARS, "source": SCALARS, "negative_prompt": SCALARS,
                                          "provenance": SCALARS, "extra": REFS})
LINES = st.lists(st.one_of(RECORDS.map(lambda r: json.dumps(r).encode()), st.binary(max_size=40)), min_size=1,
                 max_size=12)


def ingest_rows(rows: list[dict], cfg: ingest.Config) -> list:
    """Every row through ingest's fetch/validate/resize, keyed as the planner keys them."""
    keyed = [{**r, "__key__": make_key(r["source"], r["source_id"] + f"#{i}")} for i, r in enumerate(rows)]
    return list(ingest.run(keyed, cfg))


def _folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fz")
    (root / "outside").mkdir()
    (root / "outside" / "secret.jpg").write_bytes(jpeg_bytes(64, 64))
    (root / "data" / "img").mkdir(parents=True)
    (root / "data" / "img" / "ok.jpg").write_bytes(jpeg_bytes(64, 64))
    os.symlink(root / "outside" / "secret.jpg", root / "data" / "img" / "link.jpg")
    return root / "data"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_any_manifest_line_is_kept_or_rejected_with_a_reason(tmp_path_factory, lines):
    data = _folder(tmp_path_factory)
    path = data / "m.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        rows = list(manifest.list_rows(manifest.Config(path=str(path))))
    except ValueError as e:  # the first record lacks a column: one clear error naming the option
        assert "--image-col" in str(e) or "--prompt-col" in str(e), e
        return
    results = ingest_rows(rows, ingest.Config(source="manifest", path=str(path), size=32, min_size=1))
    assert len(results) == len(rows)
    for row, res in zip(rows, results):
        if isinstance(res, dict):
            assert res["jpg"] and os.path.realpath(row["image"]).startswith(str(data.resolve()))
        else:
            assert res.reason and isinstance(res.detail, str)
