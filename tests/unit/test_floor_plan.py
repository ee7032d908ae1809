"""The rules that keep the house: imports run down the floors only (formats <- views <- the libraries
<- the command), no import cycle, only the command knows runs/, no sys.path edit, every noqa says
why, and every file a help text names exists.

Floors, from the ground up:
  0  mechinterp.formats   file formats, numpy only; imports nothing of ours
  1  mechinterp.views     the HTML and figure kit; imports only the formats
  2  extract, sae_jax, interventions   the libraries
  3  mechinterp.cli       the command, its stages and recipes
Imports are read from the source (every `import`, also inside functions), not from a run.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest
from conftest import REPO

PACKAGES = ("extract", "sae_jax", "interventions", "mechinterp")


def tracked(pattern: str) -> list[str]:
    return [f for f in subprocess.run(["git", "ls-files", "-co", "--exclude-standard", pattern], cwd=REPO,
                                      capture_output=True, text=True, check=True).stdout.split() if (REPO / f).exists()]


def module_files() -> dict[str, str]:
    return {".".join(f.removesuffix(".py").split("/")).removesuffix(".__init__"): f
            for f in tracked("*.py") if f.split("/")[0] in PACKAGES}


def imports() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (a name imported from a package counts as its module
    when one of that name exists, else as the package)."""
    mods = module_files()

    def known(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for mod, path in mods.items():
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse((REPO / path).read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names}
        graph[mod] = {known(t) for t in found if t.split(".")[0] in PACKAGES} - {mod, ""}
    return graph


def floor(module: str) -> int:
    for prefix, level in (("mechinterp.formats", 0), ("mechinterp.views", 1), ("mechinterp.cli", 3),
                          ("mechinterp.__main__", 3)):
        if module == prefix or module.startswith(prefix + "."):
            return level
    return 0 if module == "mechinterp" else 2


def test_imports_run_down_the_floors_only():
    graph = imports()
    up = sorted((m, t) for m, ts in graph.items() for t in ts if floor(t) > floor(m))
    assert not up, f"imports that run back up the floors: {up}"
    assert len(graph) > 150  # the walk found the whole tree


def test_formats_import_nothing_of_ours_and_views_only_formats():
    for mod, targets in imports().items():
        if floor(mod) == 0:
            assert all(floor(t) == 0 for t in targets), (mod, targets)
        if floor(mod) == 1:
            assert all(floor(t) <= 1 for t in targets), (mod, targets)


def test_no_import_cycle():
    graph, state, cycles = imports(), {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_only_the_command_knows_runs():
    """No module below the command names the runs/ folder in code (its imports of mechinterp.cli are
    caught by the floors; help texts and docstrings may show runs/ as an example)."""
    offenders = []
    for mod, path in module_files().items():
        if floor(mod) == 3:
            continue
        tree = ast.parse((REPO / path).read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        offenders += [f"{path}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docs
                      and isinstance(n.value, str) and (n.value == "runs" or n.value.startswith("runs/"))]
    assert not offenders, offenders


def owned_file_names() -> dict[str, str]:
    """File name -> its owner module, from the string constants at the top level of each format module."""
    owned = {}
    for mod, path in module_files().items():
        if floor(mod) == 0:
            for node in ast.parse((REPO / path).read_text()).body:
                if isinstance(node, ast.Assign):
                    values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                    owned |= {v.value: mod for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                              and re.search(r"\.(json|npy|npz|safetensors|yaml)$", v.value)}
    return owned


def test_every_file_name_is_a_constant_of_its_owner():
    owned = owned_file_names()
    assert {"meta.json", "cfg.json", "results.json", "graph.npz", "feature_stats.npz"} <= set(owned)
    found = []
    for mod, path in module_files().items():
        tree = ast.parse((REPO / path).read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                name = next((f for f in owned if n.value == f or n.value.endswith("/" + f)), None)
                if name and owned[name] != mod:
                    found.append(f"{path}:{n.lineno} {n.value!r} (a constant of {owned[name]})")
    assert not found, found


def test_no_sys_path_edit():
    edits = [f"{f}:{i}" for f in tracked("*.py") for i, line in enumerate((REPO / f).read_text().splitlines(), 1)
             if re.search(r"sys\.path\.(insert|append)|sys\.path\s*\+?=", line)]
    assert not edits, edits


def test_every_noqa_says_why():
    bare = [f"{f}:{i}" for f in tracked("*.py") for i, line in enumerate((REPO / f).read_text().splitlines(), 1)
            if re.search(r"#\s*noqa(?!: *[A-Z]+\d+ *\(.+\))", line) and "re.search" not in line]
    assert not bare, bare


@pytest.mark.parametrize("path", [f for f in tracked("*.py") if f.startswith(("mechinterp/cli/", "scripts/"))])
def test_help_texts_name_files_that_exist(path):
    """Every repository file a stage's or script's text names (scripts/..., docs/..., notebooks/...) exists."""
    text = (REPO / path).read_text()
    named = set(re.findall(r"\b((?:scripts|docs|notebooks|tests)/[\w/.-]+\.(?:py|md|ipynb))", text))
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, missing


OTHER_TOOLS_FLAGS = {"--no-binary", "--no-deps", "--disable-pip-version-check", "--no-build-isolation",  # pip
                     "--silent", "--nproc_per_node"}  # npm, torchrun
DOC_PLACEHOLDERS = {"--cfg", "--n-tokens", "--no_", "--x"}  # flags.py and argparse's wording, described not suggested


def test_messages_name_only_flags_that_exist():
    """Every --flag a message or docstring of the library names is a flag of some stage (or of the
    other tool the message is about)."""
    import importlib

    from mechinterp.cli import STAGES

    flags = set()
    for command, (module, *_) in STAGES.items():
        for action in importlib.import_module(f"mechinterp.cli.stages.{module}").parser(prog=command)._actions:
            flags.update(action.option_strings)
    named = []
    for package in ("extract", "sae_jax", "interventions", "mechinterp"):
        for path in sorted((REPO / package).rglob("*.py")):
            for n in ast.walk(ast.parse(path.read_text())):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    named += [(f"{path.relative_to(REPO)}:{n.lineno}", f)
                              for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", n.value)]
    unknown = [(where, f) for where, f in named if f not in flags | OTHER_TOOLS_FLAGS | DOC_PLACEHOLDERS]
    assert not unknown, unknown
    assert len(named) > 300  # the scan sees the messages
