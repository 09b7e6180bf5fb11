"""The package's shape, checked: imports only point down the layers, no import circles, registries name real code,
the only imports inside functions are of optional heavy dependencies (each with a comment saying so), nothing is
imported by a name computed at run time, module names say what they hold, and tests mirror the package.

Layers, top to bottom (the `LAYERS` table below; README "Architecture"): cli → commands → pipeline → runner →
executors → task → the work (stages, sources, review, embed, adapter, eval, dedup, export) → the ground floor
(shards, files, images, fetch, models, options, ...). A module may import its own layer or any layer below;
relative imports are resolved, and registry strings ("surd.stages.ingest") and ``require("torch", …)`` count as
imports. Every check here has a test beside it that feeds it a violation and sees it fail.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest

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
                "surd.batching", "surd.fetch", "surd.models", "surd.storage", "surd.options", "surd.trust",
                "surd.integrity", "surd.audit")),
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
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/{Path(__file__).name} (and to the "
                         "README's Architecture map)")


def absolute(node: ast.ImportFrom, importer: str) -> str:
    """The module a ``from … import`` names, relative imports resolved against the importing module."""
    if node.level == 0:
        return node.module or ""
    is_pkg = importer in packages()
    base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_pkg else 0)]
    if not base:
        raise AssertionError(f"{importer}: relative import beyond the top-level package")
    return ".".join([*base, *([node.module] if node.module else [])])


def _target(node: ast.ImportFrom, alias: ast.alias, importer: str = "") -> str:
    base = absolute(node, importer)
    full = f"{base}.{alias.name}"
    return full if full in modules() else base


@cache
def packages() -> set[str]:
    return {module_name(p) for p in PKG.rglob("__init__.py")}


def imports(tree: ast.Module, *, top_level_only: bool = False, importer: str = "") -> list[tuple[str, ast.stmt]]:
    """(imported module, statement) for every import (relative ones resolved against `importer`), plus
    ``require("x", …)`` calls and registry strings."""
    importer = importer or next((n for n, t in modules().items() if t is tree), "")
    found: list[tuple[str, ast.stmt]] = []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(_target(node, a, importer), node) for a in node.names]
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
        edges[name] = {t for t, _ in imports(tree, importer=name) if t in modules() and t != name}
    return edges


# The only modules that import by a name held in a variable: the registry (its targets are the literal strings the
# registries are built from, checked below) and `require` (its callers pass literal module names, checked below).
DYNAMIC_IMPORTERS = {"surd.registry", "surd.deps"}


def computed_imports() -> list[str]:
    """``importlib.import_module(x)`` / ``__import__(x)`` outside DYNAMIC_IMPORTERS, and ``require(x, …)`` or a
    registry target that is not a literal string: imports this test could not follow."""
    bad = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if called in ("import_module", "__import__") and name not in DYNAMIC_IMPORTERS:
                bad.append(f"{name}:{node.lineno}: {called}() (name a module in a registry, or import it)")
            elif called == "require" and not (node.args and isinstance(node.args[0], ast.Constant)):
                bad.append(f"{name}:{node.lineno}: require() of a computed name (pass the module's name)")
            elif called == "Registry" and len(node.args) > 1 and _literal_targets(node.args[1]) is None:
                bad.append(f"{name}:{node.lineno}: a Registry whose targets are not literal strings")
    return bad


def _literal_targets(node: ast.expr) -> list[str] | None:
    """A registry's targets when they are literal strings (``**dict.fromkeys((...), "target")`` included)."""
    if not isinstance(node, ast.Dict):
        return None
    out = []
    for key, value in zip(node.keys, node.values):
        if key is None and isinstance(value, ast.Call) and getattr(value.func, "attr", "") == "fromkeys" \
                and len(value.args) == 2 and isinstance(value.args[1], ast.Constant):
            value = value.args[1]
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return None
        out.append(value.value)
    return out


def test_nothing_is_imported_by_a_computed_name():
    bad = computed_imports()
    assert not bad, "imports this test cannot follow:\n  " + "\n  ".join(bad)


def registry_targets() -> list[tuple[str, str]]:
    """(registering module, "surd.x.y[:attr]") for every literal target of every Registry(...) in surd/."""
    out = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Registry" and len(node.args) > 1:
                out += [(name, t) for t in _literal_targets(node.args[1]) or []]
    return out


def test_registries_name_real_code():
    """Every registry target is a module of surd (and, after ':', a name that module defines at top level)."""
    bad = []
    for owner, target in registry_targets():
        module, _, attr = target.partition(":")
        tree = modules().get(module)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} | {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        } if tree is not None else set()
        if tree is None or (attr and attr not in defined):
            bad.append(f"{owner}: {target}")
    assert registry_targets() and not bad, f"registry targets that name no code: {bad}"


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_point_down_the_layers():
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in surd_edges().items() for b in targets if layer_of(b) < layer_of(a)]
    assert not upward, "imports that point up a layer:\n  " + "\n  ".join(sorted(upward))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def test_no_import_circles():
    assert not _cycles(surd_edges()), f"import circles: {_cycles(surd_edges())}"


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [] and _cycles({"x": {"y"}, "y": set()}) == []
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(5000)} | {"m5000": {"m0"}}  # deeper than Python's recursion
    assert len(_cycles(chain)[0]) == 5001


def _optional(top: str) -> bool:
    return top not in CORE and top not in sys.stdlib_module_names and top != "surd"


@cache
def heavy(name: str) -> bool:
    """A surd module that imports an optional dependency when it is imported (directly or through surd modules);
    walked with a visited set, so an import circle cannot recurse forever."""
    seen, todo = {name}, [name]
    while todo:
        for target, _ in imports(modules()[todo.pop()], top_level_only=True):
            if _optional(target.split(".")[0]):
                return True
            if target in modules() and target not in seen:
                seen.add(target)
                todo.append(target)
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
                _target(node, a, name) for a in node.names]
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
    "surd.adapter": "adapter/test_model.py", "surd.adapter.checkpoint": "adapter/test_train.py",
    "surd.adapter.config": "adapter/test_train.py", "surd.adapter.data": "adapter/test_train.py",
    "surd.adapter.features": "adapter/test_train.py", "surd.adapter.io": "adapter/test_model.py",
    "surd.commands.adapter": "adapter/test_train.py", "surd.commands.caption": "stages/test_caption.py",
    "surd.commands.clip_filter": "stages/test_clip_filter.py",
    "surd.commands.inspect": "test_cli.py", "surd.commands.dedup": "stages/test_dedup.py",
    "surd.commands.embed": "stages/test_embed.py", "surd.commands.eval": "eval/test_evaluate.py",
    "surd.commands.export": "export/test_imagefolder.py", "surd.commands.ingest": "stages/test_ingest_web.py",
    "surd.commands.review": "review/test_review.py", "surd.commands.run": "test_cli.py",
    "surd.commands.safety": "stages/test_safety.py", "surd.commands.quality": "stages/test_quality.py",
    "surd.dedup.decide": "stages/test_dedup.py", "surd.dedup.index": "stages/test_dedup.py",
    "surd.dedup.kept": "stages/test_dedup.py",
    "surd.embed.cache": "stages/test_embed.py", "surd.embed.core": "stages/test_embed.py",
    "surd.embed.prompt2vec": "stages/test_embed.py",
    "surd.eval.answers": "eval/test_prompts.py",
    "surd.eval.config": "eval/test_evaluate.py", "surd.eval.generate": "eval/test_evaluate.py",
    "surd.eval.report": "eval/test_evaluate.py", "surd.eval.results": "eval/test_evaluate.py",
    "surd.eval.score": "eval/test_evaluate.py",
    "surd.executors.local": "executors/test_executors.py",
    "surd.fetch": "fetch/test_local.py", "surd.fetch.archive": "sources/test_diffusiondb.py",
    "surd.fetch.probe": "sources/test_web_state.py", "surd.fetch.remote": "test_storage_s3.py",
    "surd.fetch.result": "fetch/test_local.py",
    "surd.models.nsfw": "stages/test_safety.py", "surd.models.nudenet": "stages/test_safety.py",
    "surd.models.sd": "adapter/test_inference.py",
    "surd.models.vqa": "eval/test_iqa.py",
    "surd.review.access": "review/test_server_team.py", "surd.review.agreement": "review/test_server_team.py",
    "surd.review.journal": "review/test_server_team.py", "surd.review.progress": "review/test_server_team.py",
    "surd.review.decisions": "review/test_review.py", "surd.review.exporter": "review/test_review.py",
    "surd.review.labelstudio": "review/test_review.py",
    "surd.review.records": "review/test_review.py", "surd.review.site": "review/test_server_team.py",
    "surd.sources": "stages/test_contract.py", "surd.sources.rows": "sources/test_plan.py",
    "surd.sources.sdonline_html": "sources/test_sdonline.py",
    "surd.stages": "stages/test_contract.py", "surd.stages.review": "review/test_review.py",
}


def command_names(name: str) -> set[str]:
    """The command names a command module registers: ``app.command("x")``, ``….command("x")``, ``add_typer(…,
    name="x")`` and the group commands of its typer apps."""
    out = set()
    for node in ast.walk(modules()[name]):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("command", "add_typer"):
            out |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            out |= {k.value.value for k in node.keywords if k.arg == "name" and isinstance(k.value, ast.Constant)}
    return out


@cache
def _real_edges() -> dict[str, set[str]]:
    return surd_edges()


def covers(test: ast.Module, name: str) -> bool:
    """Whether a test module exercises surd module `name`: it imports it (or something from it) or a module that
    imports it directly (one hop: the test drives it through its one caller), or, for a command module, it imports
    the CLI and invokes one of the module's commands by name."""
    imported = set()
    for node in ast.walk(test):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    if name in imported or any(name in _real_edges().get(m, ()) for m in imported if m.startswith("surd.")
                               and not m.startswith(("surd.cli", "surd.commands", "surd.pipeline"))):
        return True
    if name.startswith("surd.commands.") and imported & {"surd.cli", "surd.cli.app", "surd.cli.main"}:
        strings = {n.value for n in ast.walk(test) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        return bool(command_names(name) & strings)
    return False


ROLE_FOLDERS = {"commands", "stages", "sources", "executors", "fetch", "models"}  # a module named after its thing
ROLE_NAMES = {"config"}  # <package>/config.py: that package's configuration


def _roles_of_one_thing(paths: list[Path]) -> bool:
    """Same-named modules are one thing in several roles: all in role folders, or one outside them that every copy in
    commands/ imports (commands/card.py is the command of export/card.py; commands/run.py is not eval/run.py's)."""
    outside = [p for p in paths if p.parent.name not in ROLE_FOLDERS]
    if not outside:
        return True
    if len(outside) > 1:
        return False
    thing = module_name(outside[0])
    return all(thing in {t for t, _ in imports(modules()[module_name(p)], importer=module_name(p))}
               for p in paths if p.parent.name == "commands")


def unclear_names(paths: list[Path]) -> list[str]:
    """Module names that do not say what the module holds: a name used twice outside the role folders (the folder
    must say the role: commands/caption.py is the command of stages/caption.py), and a command module named after
    neither a command it registers nor the package it fronts."""
    by_name: dict[str, list[Path]] = {}
    for p in paths:
        if p.stem != "__init__":
            by_name.setdefault(p.stem, []).append(p)
    bad = [f"{stem}.py: {', '.join(str(p.relative_to(PKG)) for p in ps)}" for stem, ps in sorted(by_name.items())
           if len(ps) > 1 and stem not in ROLE_NAMES and not _roles_of_one_thing(ps)]
    for p in paths:
        name = module_name(p)
        if p.parent.name == "commands" and p.stem not in ("__init__", "common"):
            fronts = {m.split(".")[1] for m in modules() if m.count(".") >= 1} | {
                m.rsplit(".", 1)[1] for m in modules() if m.startswith("surd.stages.")}
            if p.stem.replace("_", "-") not in command_names(name) and p.stem not in fronts:
                bad.append(f"commands/{p.name}: registers {sorted(command_names(name))}, named after none of them")
    return bad


def test_module_names_say_what_they_hold():
    bad = unclear_names(sorted(PKG.rglob("*.py")))
    assert not bad, "rename these (the folder or the file must say the role):\n  " + "\n  ".join(bad)


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
        test = ROOT / "tests" / where if where else None
        if test is None or not test.is_file() or not covers(ast.parse(test.read_text()), name):
            missing.append(f"{name} (covered by: {where})")
    assert not missing, "modules with logic and no test module (add one, or name it in COVERED_BY):\n  " + \
        "\n  ".join(missing)
    assert not set(COVERED_BY) & own, f"COVERED_BY names modules that have their own tests: {set(COVERED_BY) & own}"


# ------------------------------------------------------------------- each check, fed a violation, fails


@pytest.fixture
def fake_package(monkeypatch):
    """Replace the package the checks read with a few modules of source text."""

    def use(sources: dict[str, str]) -> None:
        trees = {name: ast.parse(text) for name, text in sources.items()}
        monkeypatch.setattr(sys.modules[__name__], "modules", lambda: trees)
        monkeypatch.setattr(sys.modules[__name__], "packages",
                            lambda: {n for n in trees if any(m.startswith(n + ".") for m in trees)})
        heavy.cache_clear()

    yield use
    heavy.cache_clear()


def test_a_relative_import_up_the_layers_is_caught(fake_package):
    fake_package({"surd.stages": "", "surd.stages.x": "from ..commands import common\n", "surd.commands": "",
                  "surd.commands.common": "", "surd.runner": "from .stages import x\n"})
    edges = surd_edges()
    assert edges["surd.stages.x"] == {"surd.commands.common"} and edges["surd.runner"] == {"surd.stages.x"}
    with pytest.raises(AssertionError, match=r"surd.stages.x \(work\) imports surd.commands.common \(commands\)"):
        test_imports_point_down_the_layers()


def test_a_circle_through_relative_imports_is_caught(fake_package):
    fake_package({"surd.fetch": "", "surd.fetch.a": "from . import b\n", "surd.fetch.b": "from .a import f\n"})
    with pytest.raises(AssertionError, match="import circles"):
        test_no_import_circles()
    assert heavy("surd.fetch.a") is False  # a circle does not recurse forever


def test_computed_imports_and_registries_are_caught(fake_package):
    fake_package({"surd.stages": "", "surd.stages.x": "import importlib\nimportlib.import_module(name)\n",
                  "surd.stages.y": "__import__('os')\nrequire(name, 'x')\n",
                  "surd.stages.z": "R = Registry('k', {'a': 'surd.nowhere'})\nS = Registry('k', targets)\n"})
    bad = "\n".join(computed_imports())
    assert "surd.stages.x:2: import_module()" in bad and "surd.stages.y:1: __import__()" in bad
    assert "surd.stages.y:2: require() of a computed name" in bad and "surd.stages.z:2: a Registry" in bad
    with pytest.raises(AssertionError, match="surd.stages.z: surd.nowhere"):
        test_registries_name_real_code()


def test_an_unmarked_function_level_import_is_caught(fake_package, tmp_path, monkeypatch):
    fake_package({"surd.stages": "", "surd.stages.x": "def f():\n    import json\n"})
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "surd")
    (tmp_path / "surd" / "stages").mkdir(parents=True)
    (tmp_path / "surd" / "stages" / "__init__.py").write_text("")
    (tmp_path / "surd" / "stages" / "x.py").write_text("def f():\n    import json\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="import json  \\(not an optional heavy dependency\\)"):
        test_function_level_imports_are_only_for_heavy_optional_dependencies()


def test_unclear_module_names_are_caught(tmp_path, monkeypatch):
    for rel in ("review/export.py", "embed/export.py", "commands/export.py", "commands/datasets.py",
                "stages/caption.py", "commands/caption.py", "adapter/config.py", "eval/config.py", "eval/run.py",
                "commands/run.py", "export/card.py", "commands/card.py"):
        (tmp_path / "surd" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "surd" / rel).write_text("")
    (tmp_path / "surd" / "commands" / "datasets.py").write_text("app.command('stats')(f)\napp.command('inspect')(g)\n")
    (tmp_path / "surd" / "commands" / "export.py").write_text("app.add_typer(export_app, name='export')\n")
    (tmp_path / "surd" / "commands" / "run.py").write_text("app.command('run')(f)\n")  # not eval/run's command
    (tmp_path / "surd" / "commands" / "card.py").write_text("from surd.export.card import card\napp.command('card')(f)\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "surd")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "modules",
                        lambda: {module_name(p): ast.parse(p.read_text()) for p in (tmp_path / "surd").rglob("*.py")})
    bad = unclear_names(sorted((tmp_path / "surd").rglob("*.py")))
    assert bad == ["export.py: commands/export.py, embed/export.py, review/export.py",
                   "run.py: commands/run.py, eval/run.py",
                   "commands/datasets.py: registers ['inspect', 'stats'], named after none of them"]


def test_coverage_needs_an_import_not_a_matching_word():
    assert covers(ast.parse("from surd.review.exporter import export_review"), "surd.review.exporter")
    assert not covers(ast.parse("# export_review is tested elsewhere\nx = 'export_review'"), "surd.review.exporter")
    assert covers(ast.parse("from surd.cli import app\nrun(app, ['caption', 'x'])"), "surd.commands.caption")
    assert not covers(ast.parse("from surd.cli import app\nrun(app, ['dedup'])"), "surd.commands.caption")
