# The two commands a new user needs: `make demo` and `make test`.
VENV ?= .venv
DURATION ?= 30
UP_FLAGS ?=
FLEETLEARN := $(VENV)/bin/fleetlearn

.PHONY: setup demo test lint bench clean

setup:
	@scripts/setup.sh

demo: setup
	$(FLEETLEARN) up --duration $(DURATION) --report demo-report.json $(UP_FLAGS)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

# The default benchmark set (a few minutes): figures, ratios and a markdown section.
bench: setup
	$(FLEETLEARN) bench --json bench.json --markdown bench.md

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis demo-report.json demo-report.html bench.json bench.md
