# One-command entry points. `make demo` and `make test` each install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# the suite runs in this many pytest-xdist workers, a test file per worker (its module fixtures,
# such as a browser and its server, are set up once); `make test TEST_WORKERS=4` on a bigger box
TEST_WORKERS ?= 2
# torch/torchvision: pinned to the builds this project is tested with (CPU and CUDA in one wheel).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test check lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -e ".[dev,ui,export]"
	@# the UI tests drive Debian's chromium (Playwright never downloads a browser here)
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else \
	    echo "note: chromium is missing and needs root and apt-get to install; the browser tests will be skipped"; \
	  fi; \
	fi
	touch $(STAMP)

demo: install
	$(VENV)/bin/smalltrain demo --out demo-output

test: install lint typecheck
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

check: test

bench: install
	$(PIP) install -q -e ".[bench]"
	for f in bench/bench_*.py bench/quality.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
