"""One definition per option: a config dataclass field carries its type, default, help, allowed values and bounds.

A config class is written once, with `option` fields, and decorated with `config`::

    @config
    class Config:
        num_beams: int = option(3, help="Beam search width.", ge=1)

From that one definition come the checks every config gets on construction (types, allowed values, bounds: the
same for a pipeline file, the CLI and Python), the command-line options (`cli_params` → typer, see
`surd.commands.common.derived_command`) and the pipeline-file checks that list every problem at once
(`problems`). A class's own ``__post_init__`` adds the checks that span several fields.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass
from typing import Any, Union

import typer

_META = "surd"


@dataclass(frozen=True)
class Opt:
    """What a field says about itself besides its type and default."""

    help: str
    choices: tuple[Any, ...] = ()
    ge: float | None = None  # bounds, inclusive (ge, le) or exclusive (gt)
    gt: float | None = None
    le: float | None = None
    flag: str | None = None  # the command-line name when it is not --<field-name>, e.g. --download-retries
    short: str | None = None  # a one-letter alias, e.g. -q
    cli: bool = True  # False: not a command-line option (a nested table the command fills from other options)


def option(default: Any = MISSING, *, help: str, choices: Iterable[Any] = (), ge: float | None = None,
           gt: float | None = None, le: float | None = None, flag: str | None = None, short: str | None = None,
           cli: bool = True, default_factory: Any = MISSING) -> Any:
    """A config field with its help, allowed values and bounds (see the module docstring)."""
    meta = {_META: Opt(help, tuple(choices), ge, gt, le, flag, short, cli)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def config(cls: type) -> type:
    """`dataclass(frozen=True)` whose construction first checks every field against its declaration."""
    own = cls.__dict__.get("__post_init__")
    if not hasattr(cls, "__post_init__"):  # the generated __init__ calls __post_init__ only if the class has one
        cls.__post_init__ = lambda self: None
    cls = dataclass(frozen=True)(cls)

    def __post_init__(self: Any) -> None:
        check(self)
        if own is not None:
            own(self)

    cls.__post_init__ = __post_init__
    return cls


def opt_of(f: dataclasses.Field) -> Opt | None:
    """A field's declaration, or None for a plain dataclass field."""
    return f.metadata.get(_META)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def declared_fields(cls: type) -> list[tuple[dataclasses.Field, Opt, Any]]:
    """(field, declaration, resolved type) of every declared field of a config class."""
    hints = _hints(cls)
    return [(f, o, hints[f.name]) for f in dataclasses.fields(cls) if f.init and (o := opt_of(f)) is not None]


def default_of(f: dataclasses.Field) -> Any:
    """A field's default value (MISSING when it is required)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return None


def type_name(tp: Any) -> str:
    """A type as a user reads it: 'a whole number', 'a list of strings', …"""
    args = _union_args(tp)
    if args is not None:
        return " or ".join("nothing (null)" if a is type(None) else type_name(a) for a in args)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        inner = typing.get_args(tp)
        return f"a list of {type_name(inner[0]).removeprefix('a ').removeprefix('an ')}s" if inner else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}.get(tp, str(tp))


def matches(value: Any, tp: Any) -> bool:
    """Whether a value (as a pipeline file or Python gives it) fits a field type; ints fit floats, lists tuples."""
    if tp is Any:
        return True
    args = _union_args(tp)
    if args is not None:
        return any(matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        inner = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(matches(v, inner[0]) for v in value) if inner else \
            isinstance(value, (list, tuple))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return True  # a type the declaration cannot check: the class's own __post_init__ does


def field_problem(name: str, value: Any, opt: Opt, tp: Any) -> str | None:
    """What is wrong with one value for one declared field, or None."""
    if not matches(value, tp):
        return f"{name} must be {type_name(tp)}, got {value!r}"
    if value is None or isinstance(value, (list, tuple, dict)):
        values = list(value) if isinstance(value, (list, tuple)) else []
        bad = [v for v in values if opt.choices and v not in opt.choices]
        return f"{name}: {bad[0]!r} is not one of {', '.join(map(str, opt.choices))}" if bad else None
    if opt.choices and value not in opt.choices:
        return f"{name} must be one of {', '.join(map(str, opt.choices))}, got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for bound, ok, word in ((opt.ge, lambda b: value >= b, ">="), (opt.gt, lambda b: value > b, ">"),
                                (opt.le, lambda b: value <= b, "<=")):
            if bound is not None and not ok(bound):
                return f"{name} must be {word} {bound:g}, got {value!r}"
    return None


class ConfigError(ValueError):
    """One or more fields of a config do not fit their declaration; the message lists every one."""


def check(cfg: Any) -> None:
    """Check every declared field of a config instance (types, allowed values, bounds)."""
    found = [p for f, o, tp in declared_fields(type(cfg)) if (p := field_problem(f.name, getattr(cfg, f.name), o, tp))]
    if found:
        raise ConfigError("; ".join(found))


def problems(cls: type, values: dict[str, Any], where: str = "", construct: bool = True) -> list[str]:
    """Every problem with a plain mapping (a pipeline file's ``config:``) as `cls`'s values: unknown keys, wrong
    types, values out of range, missing required fields, then (with `construct`) the class's own checks. Empty
    when it builds."""
    at = f"{where}: " if where else ""
    if not isinstance(values, dict):
        return [f"{at}expected a mapping of options, got {values!r}"]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    found = []
    unknown = sorted(set(values) - set(fields))
    if unknown:
        found.append(f"{at}unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(sorted(fields))}")
    decl = {f.name: (o, tp) for f, o, tp in declared_fields(cls)}
    for name, value in values.items():
        if name in decl and (p := field_problem(name, value, *decl[name])):
            found.append(at + p)
    missing = [n for n, f in fields.items() if default_of(f) is MISSING and n not in values]
    if missing:
        found.append(f"{at}missing required key(s) {', '.join(missing)}")
    if not found and construct:
        try:
            cls(**values)
        except (ValueError, TypeError, FileNotFoundError) as e:
            found.append(f"{at}{e}")
    return found


def build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """`cls` built from a plain mapping; the error lists every problem `problems` finds."""
    found = problems(cls, values, where, construct=False)
    if found:
        raise ConfigError("; ".join(found))
    return cls(**values)  # the class's own checks raise as they are (a missing file stays FileNotFoundError)


# ------------------------------------------------------------------------------------------ command-line options


@dataclass(frozen=True)
class Param:
    """A command-line parameter derived from a field: its keyword name, the field it fills and its signature."""

    name: str  # the keyword argument (unique in one command)
    field: str  # the config field it sets
    parameter: inspect.Parameter


def flag_of(f: dataclasses.Field, opt: Opt) -> str:
    """The option's name on the command line (a boolean's may be ``--on/--off``)."""
    return opt.flag or "--" + f.name.replace("_", "-")


def _cli_type(tp: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The annotation typer gets for a field type, and how to turn its value back into the field's."""
    args = _union_args(tp)
    if args is not None:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            cli, back = _cli_type(inner[0])
            return typing.Optional[cli], (lambda v, back=back: None if v is None else back(v))  # noqa: UP045
        return str, str
    if typing.get_origin(tp) in (tuple, list):
        inner = [a for a in typing.get_args(tp) if a is not Ellipsis] or [str]
        return list[inner[0]], tuple
    if tp in (str, int, float, bool):
        return tp, (lambda v: v)
    raise TypeError(f"a field of type {tp} cannot be a command-line option: declare it with cli=False")


def cli_params(cls: type, *, positional: Iterable[str] = (), skip: Iterable[str] = (),
               required: Iterable[str] = (), unset: bool = False) -> list[Param]:
    """One typer parameter per declared field of `cls` (fields declared ``cli=False`` and those in `skip` left out):
    ``--field-name`` (or the declared flag), its type, default and help; fields in `positional` become arguments.
    Fields without a default, and those in `required`, must be given. With `unset`, every option defaults to None
    (not given: another source, such as a pipeline file, decides) and the field's default is named in its help."""
    out = []
    skip, positional, required = set(skip), set(positional), set(required)
    for f, opt, tp in declared_fields(cls):
        if not opt.cli or f.name in skip:
            continue
        annotation, _ = _cli_type(tp)
        default = default_of(f)
        must = default is MISSING or f.name in required
        default = ... if must else (list(default) if isinstance(default, tuple) else default)
        text = opt.help + (f" (one of: {', '.join(map(str, opt.choices))})" if opt.choices else "")
        if unset and not must:
            annotation = typing.Optional[annotation]  # noqa: UP045 (typer reads the annotation object)
            text += " (default: the pipeline file's" + ("" if default in (None, "") else f", else {default}") + ")"
            default = None
        if f.name in positional:
            info = typer.Argument(default, help=text, show_default=not must)
        else:
            decls = [flag_of(f, opt), *([opt.short] if opt.short else [])]
            if tp is bool and "/" not in decls[0]:
                decls = [f"{decls[0]}/--no-{decls[0][2:]}", *decls[1:]]
            info = typer.Option(default, *decls, help=text, show_default=not must and default not in ("", None, []))
        name = flag_of(f, opt).split("/")[0][2:].replace("-", "_")
        out.append(Param(name, f.name, inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                                         annotation=annotation)))
    return out


def values_from(cls: type, params: list[Param], given: dict[str, Any]) -> dict[str, Any]:
    """The config values a command was given for `params`, as the fields' own types (lists back to tuples)."""
    hints = _hints(cls)
    return {p.field: _cli_type(hints[p.field])[1](given[p.name]) for p in params if p.name in given}


def non_default(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Only the values that differ from `cls`'s defaults: the canonical form of a nested options table, so a
    pipeline file that names a default and a command that does not save the same config."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for k, v in values.items():
        d = default_of(fields[k])
        if d is MISSING or _norm(v) != _norm(d):
            out[k] = v
    return out


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def make_command(params: list[Param], body: Callable[[dict[str, Any]], None], doc: str, name: str) -> Callable:
    """A function typer can register, whose parameters are `params`; it calls ``body(given)`` with every value."""
    seen: dict[str, str] = {}
    for p in params:
        if p.name in seen:
            raise TypeError(f"command {name}: two parameters named {p.name} ({seen[p.name]} and {p.field})")
        seen[p.name] = p.field

    def command(**given: Any) -> None:
        body(given)

    ordered = sorted((p.parameter for p in params), key=lambda q: q.default.__class__.__name__ != "ArgumentInfo")
    command.__signature__ = inspect.Signature([q.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for q in ordered])
    command.__annotations__ = {p.name: p.parameter.annotation for p in params}
    command.__doc__ = doc
    command.__name__ = command.__qualname__ = name
    return command
