# The two commands of the README. Everything installs into .venv; nothing system-wide.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench schema clean

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## make dev: install, then run the whole stack (embedded PostgreSQL + Redis unless OMS_* URLs are set)
dev: $(STAMP)
	$(VENV)/bin/oms dev

## make test: lint, then the full test suite against real PostgreSQL and Redis
test: $(STAMP) lint
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schema: $(STAMP)
	$(VENV)/bin/strawberry export-schema app.api.schema:schema --output graphql/schema.graphql

bench: $(STAMP)
	$(VENV)/bin/python bench/tenants.py --quick

clean:
	rm -rf $(VENV) .oms
