# Two commands on a fresh machine:  `make quickstart` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-all quickstart clean

# torch==2.13.0 is named in the same pip command as everything else: alone, a dependency's
# plain "torch" could pull a multi-GB CUDA build. torchvision is never installed.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The main job: synthetic data, a tiny model trained on CPU, soft-comparison evaluation before and after,
# a W&B offline run, checkpoints, scatter plots and an exported model (a complete scorer) in a run folder of its
# own, outputs/quickstart/runs/<time>-<W&B id>/; outputs/quickstart/latest points at the newest run.
# One torch thread: faster than two for a model this small (measured: experiments/quickstart.md).
quickstart: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m c2s_lightning fit --config experiments/quickstart.yaml

clean:
	rm -rf $(VENV) outputs
