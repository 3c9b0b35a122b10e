# The two commands a new user needs: `make demo` and `make test`.
VENV ?= .venv
DURATION ?= 30
FLEETLEARN := $(VENV)/bin/fleetlearn

.PHONY: setup demo test lint clean

setup:
	@scripts/setup.sh

demo: setup
	$(FLEETLEARN) up --duration $(DURATION) --report demo-report.json

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis demo-report.json
