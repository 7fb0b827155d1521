# Two commands on a fresh machine:  `make quickstart` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test test-all quickstart clean

# Which torch build to install: TORCH=cpu, cuda or auto (default: the CPU build unless `nvidia-smi -L`
# lists an NVIDIA GPU). PyPI's Linux torch wheel is the CUDA build (~20 nvidia-* packages, several GB);
# cpu takes 2.13.0+cpu from PyTorch's CPU index (TORCH_CPU_INDEX) when it answers, else from the wheel
# folders pip is configured with; either way the installed build is checked (tools/torch_build.py).
# torch goes first, alone, so that the rest finds it installed. Switching builds: `make clean` first.
TORCH ?= auto
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_BUILD := $(shell $(PYTHON) tools/torch_build.py choose $(TORCH))
ifeq ($(filter cpu cuda,$(TORCH_BUILD)),)
$(error TORCH must be cpu, cuda or auto, not '$(TORCH)')
endif
STAMP := $(VENV)/.installed-$(TORCH_BUILD)

$(STAMP): pyproject.toml constraints.txt tools/torch_build.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" \
		$$($(PYTHON) tools/torch_build.py index-args $(TORCH_BUILD) $(TORCH_CPU_INDEX))
	$(PY) -W ignore tools/torch_build.py check $(TORCH_BUILD)  # -W: torch warns that numpy is not in yet
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" -e ".[dev]"
	-$(PY) -m c2s_lightning fit --help > /dev/null  # kept once rendered: `fit --help` then answers at once
	rm -f $(VENV)/.installed*
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
