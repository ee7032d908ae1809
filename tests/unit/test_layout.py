"""The layout's rules, checked: every flag comes from a config dataclass (so a default is written
once), no framework crosses between the two sides, no module outgrows 400 lines, every command
and relative link in the README and docs/ works, and the package installs with its `mechinterp` command."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
from conftest import REPO

from mechinterp.cli import STAGES
from mechinterp.cli.flags import flag_fields, flag_name

STAGE_MODULES = sorted({module for module, _ in STAGES.values()})


def _stage_parser(module: str):
    import importlib

    return importlib.import_module(f"mechinterp.cli.stages.{module}").parser()


@pytest.mark.parametrize("module", STAGE_MODULES)
def test_every_flag_is_a_config_field_with_its_default(module):
    """No hand-written flag: each one is a field of a config the stage registered, and its default is
    the field's (or the stage's named recipe override). A default typed twice cannot come back."""
    parser = _stage_parser(module)
    by_dest = {a.dest: a for a in parser._actions if a.dest != "help"}
    owned = set()
    for cls, skip, prefix, only in parser.configs:
        for f in flag_fields(cls, skip, only):
            action = by_dest[prefix + f.name]
            assert action.option_strings == ["--" + flag_name(f, prefix)]
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.metadata.get("repeat"):  # argparse's append starts from None; values() gives the field's default
                default = None
            overridden = action.default != default
            if overridden:  # only a recipe may change a default, and only through add_flags(defaults=)
                assert prefix, (module, f.name, action.default, default)
            owned.add(prefix + f.name)
    assert set(by_dest) == owned, f"flags not from a config: {set(by_dest) - owned}"


LIGHT = {"extract": "jax", "interventions": "jax", "sae_jax": "torch", "mechinterp": "torch"}


@pytest.mark.slow  # fresh interpreters in subprocesses
@pytest.mark.parametrize("package,absent", sorted(LIGHT.items()))
def test_no_framework_crosses(package, absent):
    """Importing every module of one side in a fresh interpreter leaves the other framework unloaded
    (mechinterp, the command and the file formats, loads neither)."""
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for p in (REPO / package).rglob("*.py") if p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if m == {absent!r} or m.startswith({absent!r} + '.')]\n"
            "print(len(bad))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0", f"importing {package} loads {absent}"
    if package == "mechinterp":
        proc = subprocess.run([sys.executable, "-c", code.replace("'torch'", "'jax'")], capture_output=True,
                              text=True, timeout=300, cwd=REPO)
        assert proc.stdout.strip() == "0", "importing mechinterp loads jax"


def test_no_module_over_400_lines():
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.py"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    long = {f: n for f in files if not f.startswith("tests/") and (REPO / f).exists()
            and (n := len((REPO / f).read_text().splitlines())) > 400}
    assert not long, long


DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]


def documented_commands() -> list[list[str]]:
    """Every command line of the README and of docs/ that runs one of our scripts or the mechinterp command."""
    found = []
    for doc in DOCS:
        for line in (REPO / doc).read_text().splitlines():
            m = re.match(r"\s*(?:\.venv/bin/python |python )?(scripts/[\w/]+\.py|\.venv/bin/mechinterp [\w-]+|mechinterp [\w-]+)",
                         line)
            if m:
                found.append(m.group(1).split())
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_exists(doc):
    text = (REPO / doc).read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [link for link in links if "://" not in link and not (REPO / doc).parent.joinpath(link).exists()]
    assert not missing, missing


def test_docs_speak_of_the_lab_not_its_history():
    words = re.compile(r"\b(this|last|earlier|previous) session\b|\bissue \d+|\bissue #\d+", re.I)
    found = [f"{doc}:{i}" for doc in DOCS for i, line in enumerate((REPO / doc).read_text().splitlines(), 1)
             if words.search(line)]
    assert not found, found
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


@pytest.mark.slow  # builds every stage's parser (imports torch and jax)
def test_every_documented_command_runs(monkeypatch, capsys):
    """Each command of the README and docs/ answers --help (in this process: the scripts are wrappers of
    the stages)."""
    import runpy

    commands = documented_commands()
    assert len({c[1] if c[0].endswith("mechinterp") else c[0] for c in commands}) >= 30, commands
    for cmd in sorted({tuple(c) for c in commands}):
        if cmd[0].endswith("mechinterp"):
            argv, target = ["mechinterp", *cmd[1:], "--help"], None
        else:
            argv, target = [cmd[0], "--help"], str(REPO / cmd[0])
            monkeypatch.syspath_prepend(str((REPO / cmd[0]).parent))   # as `python script.py` does (scripts/bench's _bench)
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_:
            if target:
                runpy.run_path(target, run_name="__main__")
            else:
                from mechinterp.cli import main
                main(argv[1:])
        out = capsys.readouterr().out
        assert exit_.value.code in (0, None) and "usage:" in out, (cmd, out[-500:])


@pytest.mark.slow
def test_pip_install_gives_the_mechinterp_command(tmp_path):
    """`pip install .` (without dependencies: they are this environment's) puts every package, the
    browser's assets, the C++ kernel source and the `mechinterp` command in place."""
    import shutil

    src, target = tmp_path / "src", tmp_path / "site"  # a copy: setuptools writes build/ beside the sources
    for f in subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split():
        if (REPO / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, src / f)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path in ("mechinterp/cli/__init__.py", "mechinterp/formats/sae.py", "mechinterp/views/html.py",
                 "sae_jax/architectures/batchtopk.py", "interventions/attribution/assets/graph_actions.js",
                 "interventions/browser/assets/index.html", "sae_jax/cpu_kernels.cc",
                 "interventions/shift/experiment.py", "extract/ioi/circuit.py"):
        assert (target / path).exists(), path
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(target / "bin" / "mechinterp"), "--help"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and "train-sae" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-c", "import mechinterp, extract; print(mechinterp.__file__, extract.__file__)"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.stdout.count(str(target)) == 2, out.stdout  # the installed copy, not the repository's


def test_single_store_is_the_default_dump_and_refuses_ambiguity(tmp_path):
    from mechinterp.cli.runs import default_store_dir, single_store

    with pytest.raises(FileNotFoundError, match="run `mechinterp dump` first"):
        single_store("m", tmp_path)
    a = default_store_dir("m", "blocks.1.hook_resid_pre", tmp_path)
    a.mkdir(parents=True)
    (a / "meta.json").write_text("{}")
    assert single_store("m", tmp_path) == a
    b = default_store_dir("m", "blocks.2.hook_resid_pre", tmp_path)
    b.mkdir(parents=True)
    (b / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match="several activation stores.*pass --acts"):
        single_store("m", tmp_path)


@pytest.mark.parametrize("size", ["tiny", "demo", "full"])
def test_demo_sizes_build_every_stage_config(size, tmp_path, monkeypatch):
    """The main job checks every stage's settings (typed, validated by the configs) before it starts."""
    from mechinterp.cli import pipeline
    from mechinterp.cli.stages import demo

    cfg = demo.DemoConfig(size=size, out=str(tmp_path))
    argvs = {s.name: pipeline.stage_argv(s, tmp_path, cfg, demo.SIZES) for s in pipeline.stages_for(size, demo.STAGES)}
    assert argvs["dump"][argvs["dump"].index("--n_tokens") + 1] == str(demo.SIZES[size]["dump"]["n_tokens"])
    assert ("trace" in argvs) == (size != "tiny")
    if size != "tiny":
        assert argvs["pairs"].count("--hook") == 2 and "--answer" in argvs["trace"]
    assert "--seed" not in argvs["smoke"] and "--model" in argvs["smoke"]
    monkeypatch.setitem(demo.SIZES[size], "sae", {**demo.SIZES[size]["sae"], "stepz": 3})
    with pytest.raises(ValueError, match="has no setting 'stepz'"):
        pipeline.run_stages(tmp_path / "never", cfg, demo.STAGES, demo.SIZES, demo.EXPECTED_S)
    monkeypatch.setitem(demo.SIZES[size], "sae", {"k": 0, "arch": "topk"})
    with pytest.raises(ValueError, match="stage sae.*--k 0 must be >= 1"):
        pipeline.run_stages(tmp_path / "never", cfg, demo.STAGES, demo.SIZES, demo.EXPECTED_S)
    assert not (tmp_path / "never").exists()  # refused before anything was written


@pytest.mark.slow  # fresh interpreters in subprocesses
@pytest.mark.parametrize("argv,first_words", [
    (["no-such-stage"], "error: unknown stage 'no-such-stage'; choose one of demo,"),
    (["train-sae", "--k", "x"], "error: --k: invalid int value: 'x' (see mechinterp train-sae --help)"),
    (["shift", "--features", "1,x"], "error: --features takes ints separated by ','"),
    (["demo", "--size", "huge"], "error: --size: invalid choice: 'huge'"),
    (["steer", "--feature", "3"], "error: the following arguments are required: --sae"),
])
def test_command_line_errors_are_one_line_and_exit_2(argv, first_words):
    proc = subprocess.run([sys.executable, "-m", "mechinterp", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith(first_words), proc.stderr


def test_default_output_folders_are_unique_per_input():
    """Two prompts never share trace's default folder: non-ASCII ones, or ones alike for 40 characters."""
    from mechinterp.cli.runs import text_dir_name

    same_start = "When Mary and John went to the store, John gave a drink to"
    names = {text_dir_name(p) for p in ("Привет, мир", "こんにちは世界", same_start + " her", same_start + " him")}
    assert len(names) == 4
    assert text_dir_name(same_start) == text_dir_name(same_start)  # a re-run finds its own graph
    assert text_dir_name(same_start).startswith("when_mary_and_john_went_to_the_store_joh-")
