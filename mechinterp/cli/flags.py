"""Config dataclasses are the command line: each field becomes a flag, its default and docstring
the flag's default and help, so a default is written once (in the dataclass).

    p = argparse.ArgumentParser()
    add_flags(p, DumpConfig)                        # --model, --n_tokens, --hook (repeatable) ...
    cfg = build(DumpConfig, p.parse_args())         # validated by DumpConfig.__post_init__

Spelling: the field name (`--n_tokens`); a field's metadata may rename it (`flag`), make a tuple
field repeatable (`repeat`: `--hook a --hook b`) and give `choices`. A bool that defaults to True
becomes `--no_<name>` (or its `flag`), one that defaults to False `--<name>`. A field typed
`X | None` defaulting to None means "derive it" (its docstring says how).

Why not tyro / simple-parsing / jsonargparse: they spell flags `--n-tokens` or `--cfg.n_tokens`
unless configured, add a dependency to every stage's start-up, and hide the argparse parser that
the tests walk; the ~100 lines here keep the users' spellings exactly.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from typing import Any

from mechinterp.formats.bounds import FINITE, Bounds, field_bounds

SCALARS = {"int": int, "float": float, "str": str}


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """The string literal under each annotated field of a dataclass (and its bases), one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_of(cls, f: dataclasses.Field) -> tuple[type, bool, bool]:
    """(scalar type, optional, is a tuple) of a field, from its annotation string."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = [p.strip() for p in ann.split("|")]
    optional = "None" in parts
    base = next(p for p in parts if p != "None")
    if base.startswith("tuple["):
        return SCALARS[base[6:].split(",")[0].strip()], optional, True
    if base == "bool":
        return bool, optional, False
    if base not in SCALARS:
        raise TypeError(f"{cls.__name__}.{f.name}: type {ann} has no flag form")
    return SCALARS[base], optional, False


def flag_fields(cls, skip: typing.Iterable[str] = (), only: typing.Iterable[str] | None = None) -> list[dataclasses.Field]:
    """The fields of cls that are flags: all but `skip` and no_flag ones, or just `only`."""
    skip, only = set(skip), None if only is None else set(only)
    return [f for f in dataclasses.fields(cls)
            if f.name not in skip and not f.metadata.get("no_flag") and (only is None or f.name in only)]


def flag_name(f: dataclasses.Field, prefix: str = "") -> str:
    if "flag" in f.metadata:
        return prefix + f.metadata["flag"]
    if f.default is True:
        return f"no_{prefix}{f.name}"
    return prefix + f.name


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING  # type: ignore[misc]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_flags(parser: argparse.ArgumentParser, cls, skip: typing.Iterable[str] = (), prefix: str = "",
              defaults: dict[str, Any] | None = None, only: typing.Iterable[str] | None = None) -> None:
    """One flag per field of `cls` (or of `only` those). `defaults` replaces field defaults (a stage's
    own recipe, e.g. SHIFT's SAE); `prefix` prepends to the flag names (e.g. --sae_steps). A field
    without a default is a required flag."""
    docs, defaults = field_docs(cls), defaults or {}
    parser.__dict__.setdefault("configs", []).append((cls, tuple(skip), prefix, None if only is None else tuple(only)))
    group = parser.add_argument_group(cls.__name__ + (f" ({prefix}*)" if prefix else ""))
    for f in flag_fields(cls, skip, only):
        required = not _has_default(f) and f.name not in defaults
        kind, _, is_tuple = _type_of(cls, f)
        default = defaults.get(f.name, _default(f))
        name = "--" + flag_name(f, prefix)
        dest = prefix + f.name
        help_ = docs.get(f.name, "").replace("%", "%%")
        if kind is bool:
            action = "store_false" if default else "store_true"
            if default:
                help_ = f"Turn off (on by default): {help_}"
            group.add_argument(name, dest=dest, action=action, default=default, help=help_)
            continue
        rule = (field_bounds(f) or FINITE) if kind in (int, float) else None
        shown = [str(rule)] if rule is not None and rule is not FINITE else []
        shown += [] if required else [f"default: {_show(default)}"]
        kw: dict[str, Any] = dict(dest=dest, type=_checked(kind, rule, name),
                                  help=help_ + (f" ({'; '.join(shown)})" if shown else ""))
        if f.metadata.get("choices"):
            kw["choices"] = f.metadata["choices"]
        if required:
            kw["required"] = True
        elif is_tuple and f.metadata.get("repeat"):
            kw.update(action="append", default=None)  # values() turns "not given" into the field's default
        else:
            kw["default"] = default
        if is_tuple and f.metadata.get("sep"):
            kw["type"] = _separated(_checked(kind, rule, name), f.metadata["sep"], name, kind.__name__)
        elif is_tuple and not f.metadata.get("repeat"):
            kw["nargs"] = "+"
        group.add_argument(name, **kw)


def _checked(kind: type, rule: Bounds | None, name: str):
    """argparse's type for a field: the scalar, refused with one line when it leaves the field's range."""
    if rule is None:
        return kind

    def parse(text: str):
        value = kind(text)  # a ValueError reads "invalid int value: 'x'"
        why = rule.problem(value)
        if why:
            raise argparse.ArgumentTypeError(f"{name} {text} {why}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _separated(parse_one, sep: str, name: str, kind_name: str):
    def parse(text: str) -> tuple:
        try:
            return tuple(parse_one(t) for t in text.replace(" ", "").split(sep) if t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes {kind_name}s separated by {sep!r}, got {text!r}") from None
    return parse


def _show(v: Any) -> str:
    return "derived" if v is None else ", ".join(map(str, v)) if isinstance(v, tuple) and v else repr(v)


def values(cls, ns: argparse.Namespace, skip: typing.Iterable[str] = (), prefix: str = "",
           only: typing.Iterable[str] | None = None) -> dict[str, Any]:
    """The parsed values of cls's fields (tuples as tuples; an unrepeated repeatable flag: the default)."""
    out = {}
    for f in flag_fields(cls, skip, only):
        v = getattr(ns, prefix + f.name)
        if isinstance(v, list):
            v = tuple(v)
        elif v is None and f.metadata.get("repeat"):
            v = _default(f)
        out[f.name] = v
    return out


def build(cls, ns: argparse.Namespace, skip: typing.Iterable[str] = (), **fixed):
    """cls(**parsed flags, **fixed): the dataclass validates itself."""
    return cls(**{**values(cls, ns, skip), **fixed})


def check(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> list:
    """Build every config whose flags `parser` holds from `ns`: each dataclass validates itself, so a
    bad setting fails here, before anything runs."""
    return [cls(**values(cls, ns, skip, prefix, only)) for cls, skip, prefix, only in parser.__dict__.get("configs", [])]


def argv_for(parser: argparse.ArgumentParser, overrides: dict[str, Any]) -> list[str]:
    """Flags of `parser` that set `overrides` (keyed by flag destination); an unknown key is an error."""
    actions = {a.dest: a for a in parser._actions}
    argv: list[str] = []
    for dest, v in overrides.items():
        if dest not in actions:
            raise ValueError(f"{parser.prog} has no setting {dest!r}")
        a = actions[dest]
        flag = a.option_strings[0]
        if isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            argv += [flag] if v != a.default else []
        elif isinstance(a, argparse._AppendAction):
            for item in v:
                argv += [flag, str(item)]
        elif isinstance(v, (tuple, list)):
            argv += [flag, *map(str, v)] if a.nargs else [flag, ",".join(map(str, v))]
        else:
            argv += [flag, str(v)]
    return argv
