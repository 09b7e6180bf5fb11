"""A real S3-compatible server for tests: moto's server mode, started as a separate process on 127.0.0.1.

`S3Server` starts ``python -m moto.server`` on a free port and points the standard AWS environment variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) at it, for this process and the processes it starts; nothing
is passed to surd itself, which reads them the way it would read real credentials. No other address is contacted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _forget_clients() -> None:
    """fsspec keeps one S3 filesystem per process, bound to the endpoint it was made with: another server (another
    test module) needs a fresh one."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


class S3Server:
    """``with S3Server(tmp) as s3: s3.env`` — the environment that points boto/s3fs at the server."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = Path(log_dir) / "moto.log"
        self.env = {**ENV, "AWS_ENDPOINT_URL": self.endpoint}
        self._saved: dict[str, str | None] = {}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        pytest.importorskip("moto.server", reason="pip install 'moto[server]' (in surd's dev extra)")
        pytest.importorskip("s3fs", reason="pip install s3fs (surd's remote extra)")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        for k, v in self.env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        _forget_clients()
        return self

    def make_bucket(self, name: str) -> str:
        import s3fs

        s3fs.S3FileSystem().mkdir(name)
        return f"s3://{name}"

    def __exit__(self, *exc: object) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _forget_clients()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def output_digests(root: str) -> dict[str, str]:
    """sha256 of every .tar, .parquet and .safetensors under a run folder or URL (planned inputs under _state/
    left out), keyed by relative path. safetensors are hashed with their header's keys sorted: the library writes
    its metadata map in an order that changes from process to process (on local disk too)."""
    import hashlib
    import json
    import struct

    from surd import storage

    out = {}
    for rel in storage.walk_files(root):
        if "/_state/" in f"/{rel}" or not rel.endswith((".tar", ".parquet", ".safetensors")):
            continue
        data = storage.read_bytes(storage.join(root, *rel.split("/")))
        if rel.endswith(".safetensors"):
            n = struct.unpack("<Q", data[:8])[0]
            data = json.dumps(json.loads(data[8:8 + n]), sort_keys=True).encode() + data[8 + n:]
        out[rel] = hashlib.sha256(data).hexdigest()
    return out
