# The two commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing. torch is pinned explicitly so that pip
# never resolves an unpinned (multi-GB CUDA) build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0

.PHONY: test lint typecheck test-cuda test-brian2 demo docs venv bench clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	touch $@

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PIP) install -q $(TORCH) -e '.[dev,fast,plot,demo,docs]'
	touch $@

$(VENV)/.demo: $(VENV)/.base pyproject.toml
	$(PIP) install -q $(TORCH) -e '.[demo,plot,fast]'
	touch $@

venv: $(VENV)/.dev

# ruff (lint and format) on the package, its tests and the benchmarks, and mypy (strict) on plastic/
# alone, configured in pyproject.toml; make test runs it first
LINTED := plastic tests benchmarks
lint: $(VENV)/.dev
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	$(PY) -m mypy

# mypy alone
typecheck: $(VENV)/.dev
	$(PY) -m mypy

test: lint
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(PY) -m pytest -q -n 2 tests

# the device-parametrised tests on a GPU (skipped when CUDA is not available)
test-cuda: $(VENV)/.dev
	$(PY) -m pytest -q tests/test_devices.py tests/test_compiled_step.py --device cuda

# the cross-checks against Brian2 in their own venv: brian2 needs numpy<2.3 (pyproject's brian2
# extra), which .venv does not pin; not part of `make test`
VENV_BRIAN2 := .venv-brian2
PY_BRIAN2 := $(VENV_BRIAN2)/bin/python

$(VENV_BRIAN2)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV_BRIAN2)
	$(PY_BRIAN2) -m pip install -q --upgrade pip
	$(PY_BRIAN2) -m pip install -q $(TORCH)
	$(PY_BRIAN2) -m pip install -q $(TORCH) -e '.[dev,brian2]'
	touch $@

test-brian2: $(VENV_BRIAN2)/.ready
	$(PY_BRIAN2) -m pytest -q -p no:xdist -m brian2 tests/test_brian2_reference.py

demo: $(VENV)/.demo
	$(PY) -m plastic demo $(ARGS)

# the documentation site into site/ (mkdocs --strict: a broken link or reference fails)
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(PY) docs/build_site.py

bench: $(VENV)/.dev
	$(PY) benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(VENV_BRIAN2) .pytest_cache .hypothesis site build/docs_src
