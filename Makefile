# The README's commands. Everything they need is bootstrapped here (a .venv with the
# built wheel of this project installed, not a develop install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint wagon bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel 'setuptools<70'

$(VENV)/.deps: setup.py | $(BIN)/python
	$(BIN)/pip install -q 'cloudify>=7.0.5,<7.1' 'pytest>=7' 'pytest-mock>=3' \
		'asyncssh>=2.14' 'flake8>=6' 'wagon>=1.0'
	touch $@

# Build the wheel and install it (re-done on every run so tests see the current code).
install: $(VENV)/.deps
	rm -rf build dist
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist .
	$(BIN)/pip install -q --no-deps --force-reinstall dist/cloudify_upgrade_plugin-*.whl

demo: install
	$(BIN)/python -m tests.demo

lint: $(VENV)/.deps
	$(BIN)/flake8 cloudify_upgrade_plugin tests benchmarks setup.py _cloudify_upgrade_hook.py

test: install lint
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests

wagon: install
	rm -rf wagon-out
	$(BIN)/wagon create . -o wagon-out -f
	$(BIN)/wagon validate wagon-out/*.wgn
	$(BIN)/python -m tests.packaging.wagon_contents wagon-out/*.wgn

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf build dist wagon-out *.egg-info $(VENV)
