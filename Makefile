# The two commands a newcomer needs are `make demo` and `make test`; each sets itself up in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck audit fuzz bench clean help

help:
	@echo "make demo   run the responder end to end on an embedded AWS (moto) with real sample findings"
	@echo "make test   run the test suite (sets up .venv first)"
	@echo "make lint   ruff + mypy";  echo "make audit  known vulnerabilities in the pinned dependencies"
	@echo "make fuzz   long property/fuzz run";  echo "make bench  benchmarks"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/clampdown demo

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest -n auto $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy chalicelib clampdown

# Known vulnerabilities in the pinned dependencies: constraints.txt (CLI, dev) and requirements.txt (what
# the Lambda package vendors). Fails closed: a package that could not be looked up (no network, an index
# without PyPI's JSON API) fails the audit instead of passing unaudited (pip-audit's --strict).
audit: $(STAMP)
	@$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r constraints.txt -r requirements.txt \
	|| { echo "error: dependency audit failed: a known vulnerability, or packages that could not be audited" \
	          "(is the vulnerability database reachable?): see above" >&2; exit 1; }

# The property/fuzz suites with many more examples (HYPOTHESIS_PROFILE=fuzz): every Hypothesis test
# carries the `fuzz` marker (tests/conftest.py adds it), whatever its file or test name: patterns,
# findings, the SQS handler, the playbook loader, templates, input files, Slack messages.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n auto -m fuzz $(PYTEST_ARGS)

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis build *.egg-info

# Build the deployable stack of a stage into out/<stage>/: make package STAGE=prod (see README, "Deploy").
STAGE ?= dev
.PHONY: package
package: $(STAMP)
	rm -rf out/$(STAGE)
	$(BIN)/clampdown package --stage $(STAGE) out/$(STAGE)
