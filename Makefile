# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
# torch's OpenMP threads spin-wait by default; on a shared 2-core machine that costs up to 10x,
# so the tests (and anything else run from here) get PASSIVE unless the caller sets a policy.
# `make demo` has the cores to itself and keeps OpenMP's default: PASSIVE wakes the other thread
# at every small kernel and made the per-image stages 1.3-2.5x slower (docs/benchmark.md#time).
CALLER_OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test test-voc lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# Headless Chromium renders report.html in tests/pipeline/test_report_html.py: the Debian
# package, installed only where no chromium is on PATH (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(VENV)/.chromium: | $(BIN)/python
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	touch $@

# Test extras, plus pydensecrf2 (the reference the dense-CRF agreement tests compare against;
# it is built from source and needs Cython at build time).
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed | $(VENV)/.chromium
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q "cython>=3,<4" "setuptools>=77,<81"
	$(BIN)/python -m pip install -q --no-build-isolation "pydensecrf2>=1.1,<2"
	touch $@

demo: $(VENV)/.installed
	$(if $(CALLER_OMP_WAIT_POLICY),,env -u OMP_WAIT_POLICY) $(BIN)/wsss run --config demo --out $(DEMO_OUT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# WSSS_REQUIRE_CHROMIUM: the report rendering test fails, rather than skips, without chromium.
test: lint
	WSSS_REQUIRE_CHROMIUM=1 $(BIN)/python -m pytest

# `wsss run --config voc` and `--config photos` end to end on the shared VOC photos (marked slow;
# CI runs them too).
test-voc: $(VENV)/.installed-test
	WSSS_REQUIRE_CHROMIUM=1 $(BIN)/python -m pytest -m slow tests/pipeline/test_voc_run.py \
		tests/pipeline/test_photos_run.py

clean:
	rm -rf $(VENV) runs
