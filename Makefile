# Two commands on a fresh machine:  `make quickstart` (the main job) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test test-all test-floor quickstart wheelhouse clean

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

# The model, scoring and GPU-suite tests again on the oldest releases pyproject allows
# (constraints-floor.txt; docs/versions.md). .venv-floor holds only those releases and reads every
# other package from .venv (a .pth file placed after its own site-packages).
FLOOR := .venv-floor
FLOOR_PY := $(FLOOR)/bin/python
FLOOR_TESTS := tests/test_hf_versions.py tests/test_fast_scoring.py tests/test_mplug_backbone.py tests/mplug_owl2 \
	tests/test_scorer.py tests/test_backbones.py tests/test_module.py tests/test_export.py tests/test_metric_api.py \
	tests/test_gpu_suite.py tests/test_caching_comparator.py tests/test_adapters.py tests/test_encoding.py \
	tests/test_real_tokenizers.py tests/test_images.py tests/test_image_feed.py tests/test_datamodule.py
MAIN_SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

$(FLOOR)/.installed: $(STAMP) constraints-floor.txt
	rm -rf $(FLOOR)
	$(PY) -m venv $(FLOOR)
	echo "import site; site.addsitedir('$(MAIN_SITE)')" \
		> "$$($(FLOOR_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/c2s_main_venv.pth"
	$(FLOOR_PY) -m pip install --quiet -c constraints-floor.txt "torch==2.13.0" \
		transformers lightning torchmetrics huggingface_hub tokenizers
	touch $@

test-floor: $(FLOOR)/.installed
	C2S_FLOOR_CONSTRAINTS=constraints-floor.txt OMP_NUM_THREADS=1 $(FLOOR_PY) -m pytest -q $(FLOOR_TESTS)

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
	rm -rf $(VENV) $(FLOOR) outputs wheelhouse
