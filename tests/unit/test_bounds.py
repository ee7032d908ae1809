"""Every numeric setting of every stage declares its valid range once, on its config field; the flag
parser, --help and the config's own check all use it. The fuzz: each numeric flag of each stage with
values below and above its range, zero, negative, NaN, infinities: one `error:` line and exit 2,
before any work; from Python, the config refuses the same values."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math

import pytest

from mechinterp.cli import STAGES
from mechinterp.cli.flags import _type_of, flag_fields, flag_name, values
from mechinterp.formats.bounds import Bounds, field_bounds
from mechinterp.formats.errors import LabError

MODULES = sorted({module for module, _ in STAGES.values()})


def numeric_flags():
    """(stage module, config class, prefix, field, scalar type) of every numeric flag."""
    found = []
    for module in MODULES:
        parser = importlib.import_module(f"mechinterp.cli.stages.{module}").parser()
        for cls, skip, prefix, only in parser.configs:
            for f in flag_fields(cls, skip, only):
                kind = _type_of(cls, f)[0]
                if kind in (int, float):
                    found.append((module, cls, prefix, f, kind))
    return found


FLAGS = numeric_flags()


def bad_values(rule: Bounds, kind: type) -> list[str]:
    """Values the rule must refuse: just outside each end, and NaN and the infinities."""
    step = 1 if kind is int else 1e-3
    out = []
    if rule.low is not None:
        out.append(rule.low if rule.open_low else rule.low - step)
    if rule.high is not None:
        out.append(rule.high if rule.open_high else rule.high + step)
    out = [str(int(v)) if kind is int else repr(float(v)) for v in out]
    return out + (["nan", "inf", "-inf"] if kind is float else [])


def test_every_numeric_setting_declares_its_range():
    assert len(FLAGS) > 120
    missing = sorted({f"{cls.__name__}.{f.name}" for _, cls, _, f, _ in FLAGS if field_bounds(f) is None})
    assert not missing, f"numeric settings without a declared range: {missing}"


def _argv(parser: argparse.ArgumentParser, flag: str, value: str) -> list[str]:
    """The stage's required flags with placeholder values, then the flag under test."""
    argv = []
    for action in parser._actions:
        if action.required and action.option_strings:
            argv += [action.option_strings[0], "x"]
    return argv + [flag, value]


@pytest.mark.parametrize("module", MODULES)
def test_out_of_range_flags_are_one_line_and_exit_2(module, capsys):
    cases = 0
    for m, _, prefix, f, kind in FLAGS:
        if m != module:
            continue
        parser = importlib.import_module(f"mechinterp.cli.stages.{module}").parser(prog=f"mechinterp {module}")
        flag = "--" + flag_name(f, prefix)
        for value in bad_values(field_bounds(f), kind):
            with pytest.raises(SystemExit) as exit_:
                parser.parse_args(_argv(parser, flag, value))
            err = capsys.readouterr().err
            assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: {flag}"), (flag, value, err)
            assert "Traceback" not in err
            cases += 1
    assert cases or not any(m == module for m, *_ in FLAGS)


@pytest.mark.parametrize("module", MODULES)
def test_help_shows_each_range(module, capsys):
    parser = importlib.import_module(f"mechinterp.cli.stages.{module}").parser(prog=f"mechinterp {module}")
    text = " ".join(parser.format_help().split())
    for m, _, _, f, _ in FLAGS:
        rule = field_bounds(f)
        if m == module and rule.low is not None:
            assert f"{rule}" in text, (f.name, str(rule))


def test_configs_refuse_out_of_range_values_from_python():
    """The same values given to the config directly (as a notebook would): LabError naming the setting."""
    checked = set()
    for module, cls, prefix, f, kind in FLAGS:
        if (cls, f.name) in checked or prefix:
            continue
        checked.add((cls, f.name))
        parser = importlib.import_module(f"mechinterp.cli.stages.{module}").parser()
        ns = parser.parse_args(_argv(parser, "--" + flag_name(f), repr(_default_or_low(f, kind))))
        kwargs = values(cls, ns)
        for value in bad_values(field_bounds(f), kind):
            bad = kind(value) if kind is int else float(value)
            if dataclasses.fields(cls) and _type_of(cls, f)[2]:
                bad = (bad,)
            with pytest.raises(LabError, match=f"--{flag_name(f)} "):
                cls(**{**kwargs, f.name: bad})
    assert len(checked) > 100


def _default_or_low(f, kind):
    default = f.default if f.default is not dataclasses.MISSING and not isinstance(f.default, tuple) else None
    if default is not None:
        return default
    rule = field_bounds(f)
    low = 0 if rule.low is None else rule.low + (1 if rule.open_low else 0)
    return kind(low) if not (isinstance(low, float) and math.isinf(low)) else kind(0)
