"""Input lists at scale: the streaming planner vs the whole-list planner of the baseline revision (main before it).

    python bench/plan_scale.py            # 1M and 10M rows (this tree), 1M rows (baseline)
    python bench/plan_scale.py --quick    # 100k and 1M rows (this tree), 100k rows (baseline)

An img2dataset-style Parquet list (url, caption, similarity) is generated under bench/_work/ (cached). Its captions
are empty, so every row is rejected at once (missing_prompt) and only listing, planning and bookkeeping are timed,
as in issue 14. Each phase runs in a fresh process, timed, with its peak RSS (the process's own VmHWM):

  plan    the runner's planning alone (list, key, mark repeats, shard): rows/s, peak RSS, shards known
  run     `surd ingest urls LIST --out OUT --workers 2`, the first run (this tree reuses the plan above)
  rerun   the same command once the run is finished: what a resumed or repeated run pays before any work
          (the run's peak RSS covers its 2 worker processes too; the rerun starts none)

The baseline is checked out with `git worktree add --detach bench/_work/baseline REV` (default e7360fb) and run
from there in the same benchmark run. The last line is the ratio of this tree to the baseline at the shared size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work" / "plan_scale"
SHARD_SIZE = 1000

# Runs `-m MODULE ARGS` or `-c SNIPPET ARGS` and prints the process's peak RSS (VmHWM) as it exits. VmHWM is
# the process's own high-water mark; rusage's maxrss would also count the parent's memory at fork time.
WRAPPER = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    sys.stdout.write(f"\\nPEAK_RSS_KB {kb}\\n")
    sys.stdout.flush()
atexit.register(peak)
mode, target, *rest = sys.argv[1:]
if mode == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<snippet>", "exec"), {"__name__": "__main__"})
"""

PLAN = """
import sys, time
from pathlib import Path
from surd.runner import plan_tasks
from surd.stages import build_config, get_stage
module = get_stage("ingest")
cfg = build_config(module, {"source": "urls", "path": sys.argv[1], "shard_size": int(sys.argv[3])})
t0 = time.perf_counter()
tasks = plan_tasks(module, cfg, Path(sys.argv[2]), None)
print(len(tasks), sum(t.n_in for t in tasks), time.perf_counter() - t0)
"""


def make_list(n: int) -> Path:
    """url, caption (empty), similarity; written in row groups (run in its own process: see `cached_list`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = WORK / f"list_{n}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rng = np.random.default_rng(0)
    schema = pa.schema([("url", pa.string()), ("caption", pa.string()), ("similarity", pa.float64())])
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for start in range(0, n, 1_000_000):
            ids = range(start, min(n, start + 1_000_000))
            w.write_table(pa.table({
                "url": [f"https://images.example.com/laion/{i % 9973:04d}/{i:09d}-a-photo-of-a-lighthouse.jpg"
                        for i in ids],
                "caption": [""] * len(ids),
                "similarity": rng.random(len(ids)),
            }, schema=schema))
    tmp.rename(path)
    return path


def cached_list(n: int) -> Path:
    """The list of *n* rows, generated in a child process so this one stays small."""
    path = WORK / f"list_{n}.parquet"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--make-list", str(n)], check=True)
    return path


def baseline_tree(rev: str) -> Path:
    tree = ROOT / "bench" / "_work" / "baseline"
    if not (tree / "surd").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
    got = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if not got.startswith(rev[:7]):
        raise SystemExit(f"{tree} holds {got[:12]}, not {rev}: delete it (git worktree remove {tree})")
    return tree


def measure(args: list[str], code: Path, log: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of ``python -m …`` / ``python -c …`` run with *code* on the import path."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    with open(log, "ab") as err:
        t0 = time.perf_counter()
        # cwd: not a checkout, so `-m surd` / `-c` import surd from PYTHONPATH (the tree under test), not from '.'
        proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=env, cwd=WORK, stdout=subprocess.PIPE,
                              stderr=err)
        seconds = time.perf_counter() - t0
    out = proc.stdout.decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)[:200]} failed (status {proc.returncode}); see {log}")
    peak_kb = int(out.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return seconds, peak_kb / 1024, out.rsplit("PEAK_RSS_KB", 1)[0]


def run_size(label: str, code: Path, n: int) -> dict[str, float]:
    listing = cached_list(n)
    out = WORK / f"out_{label}_{n}"
    shutil.rmtree(out, ignore_errors=True)
    log = WORK / f"{label}_{n}.log"
    log.unlink(missing_ok=True)
    probe = "import surd; print(surd.__file__)"
    assert measure(["-c", probe], code, log)[2].strip().startswith(str(code / "surd")), code
    plan_s, plan_mb, printed = measure(["-c", PLAN, str(listing), str(out), str(SHARD_SIZE)], code, log)
    n_shards, n_rows, inner_s = printed.split()
    assert int(n_rows) == n, printed
    ingest = ["-m", "surd", "ingest", "urls", str(listing), "--out", str(out),
              "--shard-size", str(SHARD_SIZE), "--workers", "2"]
    run_s, run_mb, _ = measure(ingest, code, log)
    rerun_s, rerun_mb, _ = measure(ingest, code, log)  # nothing left to run: no worker is started
    r = {"plan_s": plan_s, "plan_rows_s": n / float(inner_s), "plan_mb": plan_mb, "shards": int(n_shards),
         "run_s": run_s, "run_mb": run_mb, "rerun_s": rerun_s, "rerun_mb": rerun_mb}
    print(f"{label:>8} {n:>11,} rows  plan {r['plan_s']:7.1f} s ({r['plan_rows_s']:9,.0f} rows/s, "
          f"{r['shards']:,} shards known before any download)  peak RSS {r['plan_mb']:6.0f} MB | "
          f"first run {r['run_s']:7.1f} s | rerun of the finished run {r['rerun_s']:6.1f} s, peak RSS "
          f"{r['rerun_mb']:6.0f} MB", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k and 1M rows; baseline at 100k")
    ap.add_argument("--baseline-rev", default="e7360fb", help="the revision to compare with (main before this work)")
    ap.add_argument("--make-list", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_list:
        make_list(args.make_list)
        return
    small, large = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    base = baseline_tree(args.baseline_rev)
    print(f"planning and re-planning {SHARD_SIZE}-row shards on {os.cpu_count()} CPUs; baseline {args.baseline_rev}")
    old = run_size("baseline", base, small)
    new = run_size("this", ROOT, small)
    big = run_size("this", ROOT, large)
    print(f"target at {large:,} rows: plan peak RSS < 1024 MB: {big['plan_mb']:.0f} MB "
          f"({'met' if big['plan_mb'] < 1024 else 'MISSED'}); finished run re-plans in < 10 s: "
          f"{big['rerun_s']:.1f} s ({'met' if big['rerun_s'] < 10 else 'MISSED'})")
    print(f"at {small:,} rows, this tree vs baseline: plan peak RSS {new['plan_mb']:.0f} vs {old['plan_mb']:.0f} MB "
          f"({old['plan_mb'] / new['plan_mb']:.1f}x less), rerun {new['rerun_s']:.1f} vs {old['rerun_s']:.1f} s "
          f"({old['rerun_s'] / new['rerun_s']:.1f}x faster), rerun peak RSS {new['rerun_mb']:.0f} vs "
          f"{old['rerun_mb']:.0f} MB ({old['rerun_mb'] / new['rerun_mb']:.1f}x less)")


if __name__ == "__main__":
    main()
