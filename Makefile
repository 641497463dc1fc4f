# The README's commands. Everything they need is bootstrapped here (a .venv with the
# built wheel of this project installed, not a develop install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The setuptools pin: why, in README.md (Install). Keep it the same in tox.ini and
# tests/packaging/conftest.py.
SETUPTOOLS := setuptools<80.9

.PHONY: demo test lint wagon bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel '$(SETUPTOOLS)'

$(VENV)/.deps: setup.py | $(BIN)/python
	$(BIN)/pip install -q 'cloudify>=7.0.5,<7.1' 'pytest>=7' 'pytest-mock>=3' \
		'pytest-xdist>=3' 'asyncssh>=2.14' 'flake8>=6' 'wagon>=1.0'
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

# The tests mostly wait on simulated managers, so PYTEST_WORKERS processes run them side by
# side (pytest-xdist): about 10 minutes on a 2-core machine (27 minutes in one process).
# pytest's progress, then the 10 slowest tests and a line per test not passed (-ra).
PYTEST_WORKERS ?= 4
test: install lint
	$(BIN)/python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) -ra --durations=10 \
		$(PYTEST_ARGS) tests

wagon: install
	rm -rf wagon-out
	$(BIN)/wagon create . -o wagon-out -f
	$(BIN)/wagon validate wagon-out/*.wgn
	$(BIN)/python -m tests.packaging.wagon_contents wagon-out/*.wgn

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf build dist wagon-out *.egg-info $(VENV)
