"""What checking a shard against its stats marker costs a reader: size + count only, SHA-256 (what surd does),
CRC-32 and xxh3 (if installed), each beside reading the tar with no check, interleaved, on the same shards.

    python bench/checksum.py                       # 1 GB of synthetic shards (random 64 KB members)
    python bench/checksum.py --mb 200 --repeats 3  # smaller
    python bench/checksum.py --dir runs/sample/00_ingest   # an existing stage directory (e.g. the sample)

Prints MB/s of CPU time per variant (median of the repeats: CPU time, not wall time, so other processes on a shared
machine do not skew one variant) and, last, the ratio checked / unchecked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from surd import shards  # noqa: E402


class _Crc:
    def __init__(self) -> None:
        self.v = 0

    def update(self, b: bytes) -> None:
        self.v = zlib.crc32(b, self.v)


class _Reader:
    """A file wrapper feeding what tarfile reads to a hash (what `surd.integrity.HashingReader` does)."""

    def __init__(self, f, h) -> None:
        self.f, self.h = f, h

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.h.update(b)
        return b


def read_with(path: str, make_hash) -> int:
    """Samples of one tar streamed as `read_shard` streams them, hashing every byte when *make_hash* is given."""
    n, last = 0, None
    with open(path, "rb") as raw:
        f = _Reader(raw, make_hash()) if make_hash else raw
        with tarfile.open(fileobj=f, mode="r|") as tar:
            for info in tar:
                if info.isfile():
                    key = os.path.basename(info.name).partition(".")[0]
                    tar.extractfile(info).read()
                    n += key != last
                    last = key
        if make_hash:
            while f.read(1 << 20):
                pass
    return n


def make_shards(d: Path, mb: int, per_shard_mb: int = 100) -> None:
    member = 64 * 1024
    for i in range(max(1, mb // per_shard_mb)):
        samples = ({"__key__": f"{i:05d}{j:08d}", "json": {"i": j}, "jpg": os.urandom(member)}
                   for j in range(per_shard_mb * 1024 * 1024 // member))
        shards.write_shard(d, shards.shard_name(i), samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="an existing stage directory instead of synthetic shards")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.dir) if args.dir else Path(tmp)
        if not args.dir:
            make_shards(d, args.mb)
        tars = shards.list_shards(d)
        total_mb = sum(os.path.getsize(t) for t in tars) / 1e6
        variants = {
            "no check (read_shard(verify=False))": lambda t: sum(1 for _ in shards.read_shard(t, verify=False)),
            "surd: size + count + SHA-256 (read_shard)": lambda t: sum(1 for _ in shards.read_shard(t)),
            "stream only": lambda t: read_with(t, None),
            "stream + SHA-256": lambda t: read_with(t, hashlib.sha256),
            "stream + CRC-32": lambda t: read_with(t, _Crc),
        }
        try:
            import xxhash  # not a surd dependency: compared only when installed

            variants["stream + xxh3_64"] = lambda t: read_with(t, xxhash.xxh3_64)
        except ImportError:
            pass
        for t in tars:  # warm the page cache once, so no variant pays for the first read from disk
            read_with(t, None)
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():  # interleaved: machine noise hits every variant alike
                t0 = time.process_time()
                for t in tars:
                    fn(t)
                times[name].append(time.process_time() - t0)
        print(f"{len(tars)} shards, {total_mb:.0f} MB, median CPU time of {args.repeats}")
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, s in med.items():
            print(f"  {name:<45} {total_mb / s:8.0f} MB per CPU second")
        base, checked = med["no check (read_shard(verify=False))"], med["surd: size + count + SHA-256 (read_shard)"]
        print(f"read_shard checked / unchecked: {checked / base:.3f}x the CPU time")


if __name__ == "__main__":
    main()
