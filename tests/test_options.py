"""One definition per option (surd.options): every stage config field reaches its command and a pipeline file with the
same default and the same checks; the declarations themselves (types, choices, bounds) and the derived commands."""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from surd.cli import app
from surd.commands.common import stage_command
from surd.fetch.http import DownloadConfig
from surd.options import (
    MISSING,
    ConfigError,
    build,
    cli_params,
    config,
    declared_fields,
    default_of,
    flag_of,
    non_default,
    option,
    problems,
)
from surd.pipeline import PipelineSettings
from surd.runner import RunSettings
from surd.sources import get_source
from surd.stages import STAGES, get_stage
from tests.conftest import REPO

SAMPLE_MANIFEST = str(REPO / "manifests" / "sample" / "manifest.jsonl")
STAGE_COMMANDS = {"caption": ("caption",), "clip_filter": ("clip-filter",), "safety": ("safety",),
                  "embed": ("embed",), "dedup": ("dedup",), "quality": ("quality",)}
SOURCE_COMMANDS = ("manifest", "folder", "urls", "civitai", "lexica", "diffusiondb", "sdonline", "webdataset", "hf")
# Stages whose config is not a command of its own: ingest is one command per source (below), review's config is
# made by `surd review import` from the decision files it is given.
NOT_DERIVED = {"ingest", "review"}


def _command(path: tuple[str, ...]):
    cmd = get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _params(path: tuple[str, ...]) -> dict[str, object]:
    return {p.name: p for p in _command(path).params}


def _cli_default(value):
    return list(value) if isinstance(value, tuple) else value


def test_every_stage_has_a_derived_command_or_a_reason():
    assert set(STAGES.names()) == set(STAGE_COMMANDS) | NOT_DERIVED


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_every_stage_field_is_an_option_with_the_fields_default(stage):
    params = _params(STAGE_COMMANDS[stage])
    fields = declared_fields(get_stage(stage).Config)
    assert fields, "the stage's Config declares its fields with surd.options.option"
    for f, opt, _ in fields:
        name = flag_of(f, opt).split("/")[0][2:].replace("-", "_")
        assert name in params, f"{stage}: field {f.name} has no command-line option"
        default = default_of(f)
        if default is MISSING:
            assert params[name].required
        else:
            assert params[name].default == _cli_default(default), f"{stage}.{f.name}"
        assert opt.help.split(" (")[0][:30] in (params[name].help or ""), f"{stage}.{f.name}: help not derived"
    for run_field, _, _ in declared_fields(RunSettings):  # --append only where a run starts from a source
        assert (run_field.name in params) == (run_field.name != "append"), run_field.name


def _source_fields(source: str) -> list[tuple[str, dataclasses.Field, object]]:
    module = get_source(source)
    out = [(source, f, o) for f, o, _ in declared_fields(module.Config) if o.cli]
    out += [("ingest", f, o) for f, o, _ in declared_fields(get_stage("ingest").Config) if o.cli]
    if getattr(module, "USES_NETWORK", False):
        out += [("download", f, o) for f, o, _ in declared_fields(DownloadConfig)]
    return out


@pytest.mark.parametrize("source", SOURCE_COMMANDS)
def test_every_ingest_field_is_an_option_of_each_source_command(source):
    params = _params(("ingest", source))
    for where, f, opt in _source_fields(source):
        name = flag_of(f, opt).split("/")[0][2:].replace("-", "_")
        assert name in params, f"ingest {source}: {where}.{f.name} has no option"
        assert params[name].default == _cli_default(default_of(f)), f"ingest {source}: {where}.{f.name}"
    for run_field, _, _ in declared_fields(RunSettings):  # --workers, --retries, --executor, --address
        assert run_field.name in params, f"ingest {source}: no --{run_field.name}"
    if "path" in {f.name for f in dataclasses.fields(get_source(source).Config)}:
        assert params["path"].required and isinstance(params["path"], typer.core.TyperArgument)


def _bad_values(opt, tp) -> list[object]:
    """Values a declaration refuses: outside a bound, not an allowed value."""
    bad = []
    if opt.choices:
        bad.append("not-a-choice")
    for bound, step in ((opt.ge, -1), (opt.gt, 0), (opt.le, 1)):
        if bound is not None:
            bad.append(type(bound)(bound + step) if float(bound).is_integer() and tp is int else bound + step)
    return bad


def _cases():
    for stage in sorted(STAGE_COMMANDS):
        for f, opt, tp in declared_fields(get_stage(stage).Config):
            for bad in _bad_values(opt, tp):
                yield stage, f, opt, bad


@pytest.mark.parametrize("stage, field, opt, bad", list(_cases()),
                         ids=lambda v: v.name if isinstance(v, dataclasses.Field) else str(v)[:20])
def test_the_command_and_a_pipeline_file_refuse_the_same_value_with_the_same_message(tmp_path, stage, field, opt,
                                                                                      bad):
    cls = get_stage(stage).Config
    required = {k: v for k, v in (("llm", "tiny"), ("layer", 1)) if k in cls.__dataclass_fields__ and field.name != k}
    as_file = [bad] if isinstance(default_of(field), tuple) else bad  # a repeatable option is a list in a file
    from_file = problems(cls, {**required, field.name: as_file})
    assert from_file and all(field.name in p for p in from_file)
    flag = flag_of(field, opt).split("/")[0]
    args = [*STAGE_COMMANDS[stage], str(tmp_path), "--out", str(tmp_path / "o"), flag, str(bad)]
    args += [x for k, v in required.items() for x in (f"--{k}", str(v))]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert from_file[0] in res.output.replace("\n", " ") or from_file[0] in " ".join(res.output.split()), res.output
    assert not (tmp_path / "o").exists()


def test_ingest_command_and_pipeline_file_save_the_same_config(tmp_path):
    """A command and a pipeline file meaning the same thing save the same config (a rerun with the other resumes)."""
    import json

    from surd.runner import run_stage

    res = CliRunner().invoke(app, ["ingest", "manifest", SAMPLE_MANIFEST, "--out", str(tmp_path / "cli"),
                                   "--shard-size", "16", "--image-col", "image"])
    assert res.exit_code == 0, res.output
    run_stage("ingest", {"source": "manifest", "path": SAMPLE_MANIFEST, "shard_size": 16,
                         "options": {"image_col": "image", "source_name": "local"}}, tmp_path / "file",
              progress=False)
    saved = [json.loads((tmp_path / d / "_config.json").read_text()) for d in ("cli", "file")]
    assert saved[0]["config"] == saved[1]["config"]
    assert saved[0]["config"]["options"] == {}  # both named only defaults


def test_a_new_field_is_a_new_option_with_nothing_else_written(monkeypatch):
    """Adding an option to a stage is one line in its Config: the command gets it, with its default and checks."""
    module = types.ModuleType("surd_test_stage")

    @config
    class Config:
        size: int = option(4, help="How many.", ge=1)
        colour: str = option("red", help="Which colour.", choices=("red", "blue"))  # the one added line

    module.Config, module.NAME = Config, "demo"
    for attr in ("plan", "finalize"):
        assert not hasattr(module, attr)
    module.USES_GPU = False
    module.run = lambda samples, cfg: samples
    module.versions = dict
    monkeypatch.setitem(sys.modules, "surd_test_stage", module)
    monkeypatch.setitem(STAGES, "demo", "surd_test_stage")
    demo = typer.Typer()
    demo.command("demo")(stage_command("demo", "Demo.\n\nExample: surd demo in --out out"))
    demo.command("other")(lambda: None)
    params = {p.name: p for p in get_command(demo).commands["demo"].params}
    assert params["colour"].default == "red" and "(one of: red, blue)" in params["colour"].help
    res = CliRunner().invoke(demo, ["demo", "in", "--out", "o", "--colour", "green"])
    assert res.exit_code == 2 and "colour must be one of red, blue, got 'green'" in res.output


# --------------------------------------------------------------------------------------- the declarations


@config
class _Demo:
    n: int = option(3, help="A count.", ge=1, le=10)
    rate: float = option(0.5, help="A rate.", gt=0)
    mode: str = option("a", help="A mode.", choices=("a", "b"))
    names: tuple[str, ...] = option((), help="Names.", choices=("x", "y"))
    limit: int | None = option(None, help="A limit.")
    flag: bool = option(False, help="A switch.")
    table: dict = option(default_factory=dict, help="A table.", cli=False)


@pytest.mark.parametrize("values, message", [
    ({"n": 0}, "n must be >= 1, got 0"),
    ({"n": 11}, "n must be <= 10, got 11"),
    ({"n": "3"}, "n must be a whole number, got '3'"),
    ({"n": True}, "n must be a whole number, got True"),
    ({"rate": 0}, "rate must be > 0, got 0"),
    ({"mode": "c"}, "mode must be one of a, b, got 'c'"),
    ({"names": ["x", "z"]}, "names: 'z' is not one of x, y"),
    ({"names": "x"}, "names must be a list of strings, got 'x'"),
    ({"limit": 1.5}, "limit must be a whole number or nothing (null), got 1.5"),
    ({"flag": "yes"}, "flag must be true or false, got 'yes'"),
    ({"table": []}, "table must be a mapping, got []"),
])
def test_declarations_check_every_construction(values, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]") + "$"):
        _Demo(**values)
    assert problems(_Demo, values) == [message]


def test_problems_lists_every_problem_and_unknown_keys():
    found = problems(_Demo, {"n": 0, "mode": "z", "nope": 1}, "stage demo config")
    assert found[0].startswith("stage demo config: unknown key(s) nope; valid keys: flag, limit, mode")
    assert found[1:] == ["stage demo config: n must be >= 1, got 0", "stage demo config: mode must be one of a, b, "
                                                                      "got 'z'"]
    assert problems(_Demo, "x")[0].startswith("expected a mapping")
    with pytest.raises(ConfigError, match="unknown key"):
        build(_Demo, {"nope": 1})
    assert build(_Demo, {"rate": 1}).rate == 1  # an int fits a float field, unchanged


def test_ints_fit_floats_lists_fit_tuples_and_none_fits_optionals():
    cfg = _Demo(rate=2, names=["x"], limit=None)
    assert cfg.rate == 2 and list(cfg.names) == ["x"] and cfg.limit is None


def test_cli_params_types_defaults_and_unset():
    params = {p.name: p.parameter for p in cli_params(_Demo)}
    assert "table" not in params  # cli=False: a nested table the command fills
    assert params["names"].annotation == list[str] and params["names"].default.default == []
    assert params["flag"].default.param_decls[0] == "--flag/--no-flag"
    unset = {p.name: p.parameter for p in cli_params(_Demo, unset=True)}
    assert all(p.default.default is None for p in unset.values())
    assert "(default: the pipeline file's, else 3)" in unset["n"].default.help


def test_non_default_keeps_only_what_differs():
    assert non_default(_Demo, {"n": 3, "mode": "b", "names": []}) == {"mode": "b"}
    assert non_default(DownloadConfig, {"rate_limit": 10.0, "threads": 4}) == {"threads": 4}


def test_run_settings_are_the_pipeline_files_top_level_keys():
    names = {f.name for f in dataclasses.fields(PipelineSettings)}
    assert {f.name for f in dataclasses.fields(RunSettings)} <= names and {"runs_dir", "fuse"} <= names
    params = _params(("run",))
    for f in dataclasses.fields(PipelineSettings):
        assert f.name in params and params[f.name].default is None  # not given: the file's value
