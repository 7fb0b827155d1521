# Two commands on a fresh machine:  `make quickstart` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-all quickstart wheelhouse clean

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

# Wheels for an offline GPU node whose Python holds CUDA torch (docs/gpu_offline.md): what it lacks of the
# runtime dependencies, for the package list in GPU_PACKAGES (its `pip list --format freeze`), never torch.
# WHEELHOUSE_WITHOUT=wandb leaves W&B out (~20 MiB less; enough for the GPU suite, which logs no W&B).
GPU_PACKAGES ?= tools/gpu_image_packages.txt
WHEELHOUSE_WITHOUT ?=
wheelhouse: $(STAMP)
	rm -rf wheelhouse
	$(PY) tools/wheelhouse.py --target $(GPU_PACKAGES) --out wheelhouse $(if $(WHEELHOUSE_WITHOUT),--without $(WHEELHOUSE_WITHOUT))

clean:
	rm -rf $(VENV) outputs wheelhouse
