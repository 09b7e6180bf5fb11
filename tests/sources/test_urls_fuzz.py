"""Fuzzing URL lists (hypothesis): every row is fetchable http(s) or rejected with a reason, and ingest turns every
row into a kept sample or a rejection, never an exception that takes the shard down."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surd import trust
from surd.sources import urls
from surd.stages import ingest
from tests.sources.test_manifest_fuzz import SCALARS, ingest_rows

URLS = st.one_of(
    st.text(max_size=40),
    st.builds(lambda s, rest: f"{s}{rest}", st.sampled_from(["http://", "https://", "file://", "s3://", "zip://",
                                                           "ftp://", "HTTP://", "http:", "//", "/", "c:\\"]),
              st.text(max_size=30)),
    st.sampled_from(["http://[::1", "http://[::1]:80x/", "http://h:-1/", "http://\u2028/", "https://%zz/",
                     "http://user@/x", "http://[v1.x]/", "file:///etc/passwd", "/etc/passwd", "s3://b/k"]),
    SCALARS,
)
RECORDS = st.lists(st.fixed_dictionaries({"url": URLS, "caption": SCALARS}, optional={"x": SCALARS}), min_size=1,
                   max_size=10)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, allow_local=st.booleans())
def test_any_url_list_row_is_fetchable_or_rejected(tmp_path_factory, records, allow_local):
    path = tmp_path_factory.mktemp("u") / "list.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = list(urls.list_rows(urls.Config(path=str(path), allow_local_files=allow_local)))
    assert len(rows) == len(records)
    for row in rows:
        if row["error"] is None:
            assert trust.check_ref(row["image"], allow_local_files=allow_local) is None
            assert allow_local or trust.scheme(row["image"]) in ("http", "https")
        else:
            assert row["error_detail"]
    # Ingest every row that needs no network (the rejected ones, and local files): one result each, with a reason.
    offline = [r for r in rows if r["error"] or trust.scheme(r["image"]) not in ("http", "https")]
    cfg = ingest.Config(source="urls", path=str(path), size=32, min_size=1)
    results = ingest_rows(offline, cfg)
    assert len(results) == len(offline)
    assert all(isinstance(r, dict) or r.reason for r in results)
