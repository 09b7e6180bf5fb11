"""The package's shape, checked: imports only point down the layers, no import circles, registries name real code,
and the only imports inside functions are of optional heavy dependencies (each with a comment saying so).

Layers, top to bottom (DESIGN.md): cli → commands → pipeline → runner → executors → task → the work
(stages, sources, review, embed, adapter) → the ground floor (shards, files, images, fetch, models, ...).
A module may import its own layer or any layer below; registry strings ("surd.stages.ingest") count as imports.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

from tests.conftest import REPO

ROOT = REPO
PKG = ROOT / "surd"

LAYERS: list[tuple[str, tuple[str, ...]]] = [  # top first
    ("cli", ("surd.cli", "surd.__main__")),
    ("commands", ("surd.commands",)),
    ("pipeline", ("surd.pipeline",)),
    ("runner", ("surd.runner",)),
    ("executors", ("surd.executors",)),
    ("task", ("surd.task",)),
    ("work", ("surd.stages", "surd.sources", "surd.review", "surd.embed", "surd.adapter", "surd.eval", "surd.dedup",
              "surd.export")),
    ("ground", ("surd.registry", "surd.deps", "surd.files", "surd.sample", "surd.shards", "surd.images",
                "surd.batching", "surd.fetch", "surd.models", "surd.storage")),
]
ROOT_MODULE = "surd"  # the package itself (only __version__) belongs to the ground floor
# Dependencies every install has (pyproject `dependencies`): import them at the top of the module.
CORE = {"numpy", "PIL", "pyarrow", "yaml", "typer", "tqdm", "requests", "urllib3", "certifi", "protego"}
REGISTRY_STRING = re.compile(r"^(surd(?:\.\w+)+)(?::\w+)?$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PKG.rglob("*.py"))}


def layer_of(name: str) -> int:
    if name == ROOT_MODULE:
        return len(LAYERS) - 1
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {Path(__file__).name} (and to DESIGN's map)")


def _target(node: ast.ImportFrom, alias: ast.alias) -> str:
    base = node.module or ""
    full = f"{base}.{alias.name}"
    return full if full in modules() else base


def imports(tree: ast.Module, *, top_level_only: bool = False) -> list[tuple[str, ast.stmt]]:
    """(imported module, statement) for every import, plus ``require("x", …)`` calls and registry strings."""
    found: list[tuple[str, ast.stmt]] = []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(_target(node, a), node) for a in node.names]
        elif top_level_only and isinstance(node, (ast.Assign, ast.Expr)):
            for call in ast.walk(node):  # torch = require("torch", "adapter") at module level
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "require" and call.args:
                    if isinstance(call.args[0], ast.Constant):
                        found.append((str(call.args[0].value), node))
    if not top_level_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = REGISTRY_STRING.match(node.value)
                if m and m.group(1) in modules():
                    found.append((m.group(1), node))  # type: ignore[arg-type]
    return found


def surd_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, tree in modules().items():
        edges[name] = {t for t, _ in imports(tree) if t in modules() and t != name}
    return edges


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_point_down_the_layers():
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in surd_edges().items() for b in targets if layer_of(b) < layer_of(a)]
    assert not upward, "imports that point up a layer:\n  " + "\n  ".join(sorted(upward))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert not _cycles(surd_edges()), f"import circles: {_cycles(surd_edges())}"


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _optional(top: str) -> bool:
    return top not in CORE and top not in sys.stdlib_module_names and top != "surd"


@cache
def heavy(name: str) -> bool:
    """A surd module that imports an optional dependency when it is imported (directly or through surd modules)."""
    for target, _ in imports(modules()[name], top_level_only=True):
        if _optional(target.split(".")[0]) or (target in modules() and target != name and heavy(target)):
            return True
    return False


def _function_imports(tree: ast.Module) -> list[ast.stmt]:
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def test_function_level_imports_are_only_for_heavy_optional_dependencies():
    """An import inside a function is only for torch & co. (optional extras), with a comment saying why."""
    bad = []
    for name, tree in modules().items():
        path = PKG.parent / (name.replace(".", "/") + ("/__init__.py" if (PKG.parent / name.replace(".", "/")).is_dir()
                                                      else ".py"))
        lines = path.read_text().splitlines()
        for node in _function_imports(tree):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                _target(node, a) for a in node.names]
            ok = all(_optional(t.split(".")[0]) or (t in modules() and heavy(t)) for t in targets)
            commented = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
            if not (ok and commented):
                why = "not an optional heavy dependency" if not ok else "no comment saying why it is deferred"
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}  ({why})")
    assert not bad, "function-level imports:\n  " + "\n  ".join(bad)


# Tests mirror the package: tests/<pkg>/test_<module>[_<aspect>].py tests surd/<pkg>/<module>.py (or the package
# itself for test_<pkg>.py). A module with logic and no test module of its own names the one that exercises it.
TEST_HELPERS = {"conftest", "fault_server", "s3_server", "hf_datasets", "stages_testing", "__init__"}
NOT_A_MODULE = {  # tests of what is not a surd module: the package shape, the repo's scripts, data and benchmarks
    "test_architecture": "the package's import graph", "test_setup": "scripts/setup.sh and surd.sh",
    "test_bench_gpu": "bench/gpu_stages.py", "test_sample_manifest": "manifests/sample and tools/sample_data",
}
COVERED_BY = {
    "surd.adapter": "adapter/test_inference.py", "surd.adapter.checkpoint": "adapter/test_train.py",
    "surd.adapter.config": "adapter/test_train.py", "surd.adapter.data": "adapter/test_train.py",
    "surd.adapter.features": "adapter/test_train.py", "surd.adapter.io": "adapter/test_model.py",
    "surd.adapter.remote": "test_storage_s3.py",
    "surd.commands.adapter": "test_cli.py", "surd.commands.caption": "stages/test_caption.py",
    "surd.commands.clip_filter": "stages/test_clip_filter.py",
    "surd.commands.datasets": "test_cli.py", "surd.commands.dedup": "stages/test_dedup.py",
    "surd.commands.embed": "stages/test_embed.py", "surd.commands.eval": "eval/test_run.py",
    "surd.commands.export": "export/test_imagefolder.py", "surd.commands.ingest": "stages/test_ingest_web.py",
    "surd.commands.review": "review/test_review.py", "surd.commands.run": "test_cli.py",
    "surd.commands.safety": "stages/test_safety.py", "surd.commands.quality": "stages/test_quality.py",
    "surd.dedup.decide": "stages/test_dedup.py", "surd.dedup.index": "stages/test_dedup.py",
    "surd.embed.cache": "stages/test_embed.py", "surd.embed.core": "stages/test_embed.py",
    "surd.embed.export": "stages/test_embed.py",
    "surd.eval.answers": "eval/test_prompts.py", "surd.eval.compare": "eval/test_run.py",
    "surd.eval.config": "eval/test_run.py", "surd.eval.generate": "eval/test_run.py",
    "surd.eval.report": "eval/test_run.py", "surd.eval.results": "eval/test_run.py",
    "surd.eval.score": "eval/test_run.py",
    "surd.executors.local": "test_runner.py",
    "surd.fetch": "fetch/test_local.py", "surd.fetch.archive": "sources/test_diffusiondb.py",
    "surd.fetch.probe": "sources/test_web_state.py", "surd.fetch.remote": "test_storage_s3.py",
    "surd.fetch.result": "fetch/test_local.py",
    "surd.models.nsfw": "stages/test_safety.py", "surd.models.nudenet": "stages/test_safety.py",
    "surd.models.sd": "adapter/test_inference.py",
    "surd.models.vqa": "eval/test_quality.py",
    "surd.review.access": "review/test_server_team.py", "surd.review.agreement": "review/test_server_team.py",
    "surd.review.journal": "review/test_server_team.py", "surd.review.progress": "review/test_server_team.py",
    "surd.review.decisions": "review/test_review.py", "surd.review.export": "review/test_review.py",
    "surd.review.labelstudio": "review/test_review.py",
    "surd.review.records": "review/test_review.py", "surd.review.site": "review/test_server_team.py",
    "surd.sources": "stages/test_contract.py", "surd.sources.manifest": "stages/test_ingest.py",
    "surd.sources.tables": "stages/test_ingest.py", "surd.sources.rows": "sources/test_plan.py",
    "surd.sources.sdonline_html": "sources/test_sdonline.py",
    "surd.stages": "stages/test_contract.py", "surd.stages.review": "review/test_review.py",
}


def _tested_module(test: Path) -> str | None:
    """The surd module a test file is named after: tests/fetch/test_http_x.py → surd.fetch.http."""
    rel = test.relative_to(ROOT / "tests")
    pkg = ["surd", *rel.parent.parts]
    words = rel.stem[len("test_"):].split("_")
    for n in range(len(words), 0, -1):
        name = "_".join(words[:n])
        for candidate in (".".join([*pkg, name]), ".".join(pkg) if name == pkg[-1] else None):
            if candidate in modules():
                return candidate
    return None


def test_test_modules_mirror_the_package():
    strays = []
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        if test.stem not in NOT_A_MODULE and _tested_module(test) is None:
            strays.append(str(test.relative_to(ROOT)))
    assert not strays, f"test modules named after no surd module (tests/<pkg>/test_<module>.py): {strays}"


def test_every_module_with_logic_has_a_test_module():
    own = {_tested_module(t) for t in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for name, tree in modules().items():
        if not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body) or name in own:
            continue
        where = COVERED_BY.get(name)
        # The covering test must name the module, or one of its functions/classes (commands: the command name).
        words = {name.rsplit(".", 1)[-1]} | {n.name.removesuffix("_cmd") for n in tree.body
                                              if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name[0] != "_"}
        text = (ROOT / "tests" / where).read_text() if where and (ROOT / "tests" / where).is_file() else ""
        if not any(re.search(rf"\b{re.escape(w)}\b", text) for w in words):
            missing.append(f"{name} (covered by: {where})")
    assert not missing, "modules with logic and no test module (add one, or name it in COVERED_BY):\n  " + \
        "\n  ".join(missing)
    assert not set(COVERED_BY) & own, f"COVERED_BY names modules that have their own tests: {set(COVERED_BY) & own}"
