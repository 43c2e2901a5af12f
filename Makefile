# Two commands set everything up on a fresh machine:
#   make run    both reference tasks on the embedded synthetic data, then a summary table
#   make test   the test suite on KERAS_BACKEND=jax and on KERAS_BACKEND=tensorflow (side by side on 2+ cores;
#               JOBS=1 for one after the other; tests/run_backends.sh), then ruff
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TASKS ?= bank_gender dog_cat
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-3} $(PY) -m kmodels.demo $(TASKS)

test: install
	@status=0; \
	PY=$(PY) bash tests/run_backends.sh || status=1; \
	$(VENV)/bin/ruff check . || status=1; \
	exit $$status

bench: install
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet -e ".[torch]"
	KERAS_BACKEND=jax $(PY) -m benchmarks.train_step --json benchmarks/results/train_step_cpu.json

lint: install
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
