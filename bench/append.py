"""What an append costs: `surd run --append` after a list gained 1% new rows vs a fresh run over the whole list.

    python bench/append.py            # 20,000 + 200 rows end to end; planning of 1,000,000 + 10,000 rows
    python bench/append.py --quick    # 2,000 + 20 rows; planning of 100,000 + 1,000 rows

End to end: a URL list (jsonl) of distinct random 64² JPEGs served from 127.0.0.1, through a pipeline of ingest
(64², shards of 500) and dedup (pHash, distance 8), 2 worker processes. The base run covers N rows; the list then
gains N/100 rows and `--append` runs; a fresh run covers all N + N/100 rows in another runs dir. Both end with the
same samples (checked: the kept keys and every rejection). Printed: each run's wall time, the work each did
(shards written per stage, images fetched), and the ratio fresh / append.

Planning: an img2dataset-style list of N rows with empty captions (as bench/plan_scale.py: every row rejected at
once, so only listing, planning and bookkeeping are timed), planned, grown by 1%, planned again with append. An
append lists the whole source again (reading a list is cheap next to fetching it) but writes only the new rows'
files, so its planning grows with the list's length at the speed of reading it.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from surd import shards
from surd.pipeline import run_pipeline
from surd.runner import plan_tasks
from surd.stages import build_config, get_stage

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "append"
LOCK = threading.Lock()


def image(i: int) -> bytes:
    pixels = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


class Images(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served = 0

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.startswith("/img/"):  # robots.txt: none
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = image(int(self.path.rsplit("/", 1)[1].split(".")[0]))
        with LOCK:
            Images.served += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def write_list(path: Path, base: str, n: int) -> None:
    path.write_text("".join(json.dumps({"url": f"{base}/img/{i}.jpg", "caption": f"random image {i}"}) + "\n"
                            for i in range(n)))


def pipeline(runs: Path, listing: Path) -> Path:
    doc = {"name": "bench", "runs_dir": str(runs), "workers": 2, "stages": [
        {"stage": "ingest", "config": {"source": "urls", "path": str(listing), "size": 64, "min_size": 32,
                                       "shard_size": 500, "download": {"rate_limit": 0, "threads": 16,
                                                                       "allowed_networks": ["127.0.0.0/8"]}}},
        {"stage": "dedup", "config": {"max_distance": 8}}]}
    path = runs.parent / f"{runs.name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def timed_run(path: Path, append: bool = False) -> tuple[float, int, list[int]]:
    served = Images.served
    t0 = time.perf_counter()
    results = run_pipeline(path, progress=False, append=append)
    wall = time.perf_counter() - t0
    assert all(r.ok for _, r in results), [r.failed for _, r in results]
    return wall, Images.served - served, [len(r.done) for _, r in results]


def outcome(stage_dir: Path) -> dict[str, tuple[str, str]]:
    return {r["key"]: (r["status"], r["reason"]) for stem in shards.list_done(stage_dir)
            for r in shards.read_sidecar(stage_dir, stem)}


def end_to_end(n: int) -> float:
    new = n // 100
    work = WORK / f"e2e_{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Images)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        listing = work / "list.jsonl"
        write_list(listing, base, n)
        grown = pipeline(work / "grown", listing)
        t_base, fetched_base, _ = timed_run(grown)
        write_list(listing, base, n + new)
        t_append, fetched_append, written_append = timed_run(grown, append=True)
        t_fresh, fetched_fresh, written_fresh = timed_run(pipeline(work / "fresh", listing))
    finally:
        httpd.shutdown()
    kept = sum(s == "kept" for s, _ in outcome(work / "fresh" / "bench" / "01_dedup").values())
    assert kept == n + new, f"only {kept} of {n + new} rows kept: the benchmark's images did not come through"
    for stage in ("00_ingest", "01_dedup"):
        assert outcome(work / "grown" / "bench" / stage) == outcome(work / "fresh" / "bench" / stage), stage
    print(f"end to end, ingest + dedup, {n:,} rows + {new:,} new (2 workers):")
    print(f"  base run ({n:,} rows):           {t_base:7.2f} s, {fetched_base:,} images fetched")
    print(f"  --append ({new:,} new rows):      {t_append:7.2f} s, {fetched_append:,} images fetched, "
          f"shards written per stage {written_append}")
    print(f"  fresh run ({n + new:,} rows):      {t_fresh:7.2f} s, {fetched_fresh:,} images fetched, "
          f"shards written per stage {written_fresh}")
    print("  same samples and rejections in both: yes")
    return t_fresh / t_append


def planning(n: int) -> tuple[float, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    new = n // 100
    work = WORK / f"plan_{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    listing = work / "list.parquet"

    def write(count: int) -> None:
        pq.write_table(pa.table({"url": [f"http://127.0.0.1:9/{i}.jpg" for i in range(count)],
                                 "caption": [""] * count}), listing)

    module = get_stage("ingest")

    def plan(out: Path, append: bool = False) -> float:
        cfg = build_config(module, {"source": "urls", "path": str(listing), "shard_size": 1000})
        t0 = time.perf_counter()
        tasks = plan_tasks(module, cfg, out, None, append=append)
        assert tasks
        return time.perf_counter() - t0

    write(n)
    plan(work / "grown")
    write(n + new)
    t_append = plan(work / "grown", append=True)
    t_fresh = plan(work / "fresh")
    print(f"planning, {n:,} rows + {new:,} new (urls Parquet, shards of 1,000):")
    print(f"  append plan: {t_append:6.2f} s   fresh plan of {n + new:,}: {t_fresh:6.2f} s   "
          f"ratio {t_fresh / t_append:.2f}x")
    return t_fresh, t_append


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 + 20 rows end to end, 100,000 + 1,000 planned")
    args = ap.parse_args()
    ratio = end_to_end(2_000 if args.quick else 20_000)
    planning(100_000 if args.quick else 1_000_000)
    print(f"fresh run / --append with 1% new rows: {ratio:.1f}x")


if __name__ == "__main__":
    main()
