"""What keeps ingest's overhead over its image work small (issue 16): no pandas / pyarrow.dataset / numpy.ma import
in a worker or in the main process, one json encoding per kept sample, encodes off the GIL; same bytes as before."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from surd import shards
from surd.images import ImageConfig, _scratch, encode
from surd.sample import Rejected, dumps_json

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["", "a", "béé", "漢字🙂", '{"k": [1, 2]}', "x" * 5000, "line\nbreak", "\x00nul"]


def _parquet(columns: dict[str, pa.Array]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, compression="zstd")
    return buf.getvalue()


@pytest.mark.parametrize("n", [0, 1, 8, 1000])
def test_string_array_is_pa_array(n):
    rng = np.random.default_rng(n)
    values = [TEXTS[i] for i in rng.integers(0, len(TEXTS), n)]
    mixed = [v.encode() if i % 2 else v for i, v in enumerate(values)]  # utf-8 bytes are taken as they are
    expected = pa.array(values, type=pa.string())
    assert shards.string_array(values).equals(expected)
    assert shards.string_array(mixed).equals(expected)
    assert _parquet({"c": shards.string_array(mixed)}) == _parquet({"c": expected})


def _old_sidecar(rows: list[dict]) -> bytes:
    """The sidecar as written before issue 16 (pa.array over row dicts, json encoded per row)."""

    def cell(r, c):
        return r[c] if isinstance(r[c], str) else dumps_json(r[c]).decode()

    return _parquet({c: pa.array([cell(r, c) for r in rows], type=pa.string()) for c in shards.SIDECAR_COLUMNS})


def test_sidecar_bytes_unchanged(tmp_path):
    kept = [{"__key__": f"{i:016x}", "jpg": b"\xff\xd8" + bytes([i]), "json": {"i": i, "p": "é " * i, "z": None}}
            for i in range(5)]
    rej = Rejected("f" * 16, "too_small", "64x10 < min_size", {"url": "http://x/ü", "n": [1, 2]})
    no_json = {"__key__": "e" * 16, "txt": b"no json member"}
    shards.write_shard(tmp_path, "00000", [*kept, rej, no_json])
    rows = [{"key": s["__key__"], "status": "kept", "reason": "", "detail": "", "meta": s["json"]} for s in kept]
    rows.append({"key": rej.key, "status": "rejected", "reason": rej.reason, "detail": rej.detail, "meta": rej.meta})
    rows.append({"key": no_json["__key__"], "status": "kept", "reason": "", "detail": "", "meta": {}})
    assert (tmp_path / "00000.samples.parquet").read_bytes() == _old_sidecar(rows)
    assert [r["meta"] for r in shards.read_sidecar(tmp_path, "00000")] == [r["meta"] for r in rows]


def test_writer_returns_the_members_read_back(tmp_path):
    sample = {"__key__": "a" * 16, "jpg": b"img", "json": {"b": 1, "a": [1.5]}, "clip.npy": b"\x93NUMPY"}
    with shards.ShardWriter(tmp_path, "00000") as w:
        members = w.add(sample)
        assert w.add(Rejected("b" * 16, "bad")) is None
        w.commit()
    with open(tmp_path / "00000.tar", "rb") as f:
        import tarfile

        with tarfile.open(fileobj=f) as tar:
            assert [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()] == members


LEAN = """
import sys, json
from surd.runner import run_stage
res = run_stage("ingest", {{"source": "manifest", "path": {manifest!r}, "shard_size": 2, "size": 64}}, {out!r},
                workers={workers}, progress=False)
assert res.ok and res.stats["kept"] == 3, res.stats
from surd import shards
shards.read_sidecar({out!r}, "00000")
print(json.dumps(sorted(m for m in ("pandas", "pyarrow.dataset", "numpy.ma") if m in sys.modules)))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_ingest_imports_no_pandas(tmp_path, workers):
    """A whole ingest (planning, workers, sidecars, the finalize pass that reads them) imports neither pandas nor
    pyarrow.dataset nor numpy.ma: each costs ~0.1-0.8 s of CPU per process."""
    lines = []
    for i in range(3):
        Image.new("RGB", (80 + i, 80), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
        lines.append(json.dumps({"image": f"{i}.png", "complex_prompt": f"prompt {i}", "id": str(i)}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    code = LEAN.format(manifest=str(tmp_path / "m.jsonl"), out=str(tmp_path / "out"), workers=workers)
    probe = ("import atexit, sys, os\n"  # every worker process reports what it imported
             "atexit.register(lambda: open(os.path.join({d!r}, str(os.getpid())), 'w').write("
             "' '.join(m for m in ('pandas', 'pyarrow.dataset', 'numpy.ma') if m in sys.modules)))\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(probe.format(d=str(site)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    reports = [p.read_text() for p in site.iterdir() if p.name.isdigit()]
    assert len(reports) >= workers and not any(reports), reports  # the main process and each worker


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png"])
def test_encode_bytes_unchanged(fmt):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    cfg = ImageConfig(size=64, image_format=fmt, quality=90)
    buf = io.BytesIO()
    img.save(buf, {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}[fmt], **({"optimize": False} if fmt == "png" else
                                                                         {"quality": 90}))
    assert encode(img, cfg) == buf.getvalue()
    assert encode(img.resize((16, 12)), cfg) != buf.getvalue()  # the scratch file is reused: nothing stale remains
    assert encode(img, cfg) == buf.getvalue()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="Linux only: elsewhere encodes go to a BytesIO")
def test_encode_uses_a_descriptor_per_thread():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        files = list(pool.map(lambda _: _scratch(), range(8)))
    assert all(isinstance(f, io.FileIO) for f in files)
    assert _scratch() is _scratch()


def test_every_parquet_read_in_surd_runs_without_arrows_thread_pool():
    """A read through Arrow's CPU thread pool leaves threads whose teardown at exit can abort a finished process
    (status -6; apache/arrow#34314): every read_table / iter_batches / ParquetFile.read call passes use_threads=False."""
    import ast

    def reads(tree: ast.AST):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("read_table", "iter_batches"):
                yield node
            if isinstance(node, ast.With):  # with pq.ParquetFile(...) as f: ... f.read(...)
                names = {i.optional_vars.id for i in node.items if isinstance(i.optional_vars, ast.Name) and
                         isinstance(i.context_expr, ast.Call) and isinstance(i.context_expr.func, ast.Attribute)
                         and i.context_expr.func.attr == "ParquetFile"}
                for inner in (n for stmt in node.body for n in ast.walk(stmt)):
                    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                            inner.func.attr == "read" and isinstance(inner.func.value, ast.Name) and \
                            inner.func.value.id in names:
                        yield inner

    found, missing = 0, []
    for path in sorted((ROOT / "surd").rglob("*.py")):
        for node in reads(ast.parse(path.read_text())):
            found += 1
            given = {k.arg: k.value for k in node.keywords}
            if not (isinstance(given.get("use_threads"), ast.Constant) and given["use_threads"].value is False):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found >= 4 and not missing, missing
