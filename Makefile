# The README's two commands: `make serve` and `make test`. Both set up first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup serve test lint typecheck bench browser
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[test]"
	touch $@

serve: setup
	$(VENV)/bin/medai serve

# The static gates first (seconds), so a style or type error fails before the suite
# starts, and Chromium for the console's browser tests (marker `browser`). Then
# everything once (Ray-served tests in Ray Serve's default mode, the served app on
# SQLite), then the Ray-served tests again in the HAProxy + throughput-optimized mode
# `serve` uses, the served app on PostgreSQL (a fresh schema in the storage tests'
# server, dropped after): each database served once, no third pass. Then the crash
# tests, which start whole servers (and a multi-node cluster) of their own, apart.
test: lint typecheck browser
	$(PY) -m pytest -m "not crash"
	MEDAI_TEST_SERVE_MODE=high-throughput $(PY) -m pytest -m serve
	$(PY) -m pytest -m crash

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Settings in pyproject.toml ([tool.mypy]).
typecheck: setup
	$(VENV)/bin/mypy serve_app deployments medai_cli

# The console's browser tests drive Debian's Chromium (Playwright launches it; no browser
# download). Installed here when missing; where it cannot be, `make test` stops here, and
# the browser tests fail rather than skip if run without it.
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

bench: setup
	$(PY) -m loadtests.bench
