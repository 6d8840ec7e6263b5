# The two commands of the README: `make run` (demo on embedded defaults) and `make test`.
VENV ?= .venv
PYTHON ?= python3
FLASK = $(VENV)/bin/flask --app wsgi
PYTEST_ARGS ?=
# The demo's traffic simulator (README): `make run DEMO_SIMULATOR=0` starts without it.
DEMO_SIMULATOR ?= 1

.PHONY: run test lint

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) demo seed
	@echo "Open http://127.0.0.1:5000 and sign in with a login above."
	DEMO_SIMULATOR=$(DEMO_SIMULATOR) $(FLASK) run --host 127.0.0.1 --port 5000

test: $(VENV)/.installed
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
