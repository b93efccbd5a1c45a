# Every target creates or reuses .venv on its own: nothing needs installing by hand first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?=
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo test lint kafka kafka-stop bench chaos fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/escalator demo $(if $(DURATION),--duration $(DURATION),)

test: $(STAMP)
	bash deploy/kafka/kafka.sh ensure-jars
	bash deploy/test-tools.sh
	url="$${ESCALATOR_TEST_DATABASE_URL:-$$(bash deploy/postgres/postgres.sh ensure)}" \
		&& ESCALATOR_TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

kafka: $(STAMP)
	bash deploy/kafka/kafka.sh start

kafka-stop:
	bash deploy/kafka/kafka.sh stop

bench: $(STAMP)
	bash deploy/kafka/kafka.sh start
	bash deploy/test-tools.sh
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

# Fault injection: a three-broker cluster, real processes, one fault per scenario, invariants
# checked; the last line is the JSON report. PROFILE=ci is the short run CI makes.
PROFILE ?= full
chaos: $(STAMP)
	bash deploy/kafka/kafka.sh ensure-jars
	$(BIN)/python -m chaos --profile $(PROFILE) $(CHAOS_ARGS)

# Fuzzing every entry point: 10,000 generated inputs each, 500 per API operation and caller
# (the test suite runs a few dozen).
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	bash deploy/kafka/kafka.sh start
	ESCALATOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ESCALATOR_FUZZ_API_EXAMPLES=500 $(BIN)/python -m pytest -q -p no:randomly \
		--durations=0 tests/fuzz tests/security/test_desk_openapi.py \
		tests/security/test_ingress_openapi.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
