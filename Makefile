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

# The suite in two parts: most of it on TEST_WORKERS processes at once (pytest-xdist; its tests
# mostly wait on brokers and node processes), then the `serial` ones alone (benchmarks, weather
# replays, drain deadlines: load-sensitive). `pytest` with no flags runs it all in one process.
TEST_WORKERS ?= 2

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial"
	$(VENV)/bin/python -m pytest -m serial

# The default benchmark set (a few minutes): figures, ratios and a markdown section.
bench: setup
	$(FLEETLEARN) bench --json bench.json --markdown bench.md

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis demo-report.json demo-report.html bench.json bench.md
