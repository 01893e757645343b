# The two commands: `make train` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test test-fast bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev,onnx,sweep]"
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with the dev, onnx and sweep extras

train: install ## train; pass Hydra overrides with ARGS="dataset=catfaces model=dcgan64"
	$(BIN)/python train.py $(ARGS)

test: install ## the whole test suite (real-data tests skip unless DCGAN_DATA_DIR has the data)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## unit tests only, no end-to-end subprocess runs
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install ## training throughput vs the PyTorch DCGAN example loop; ARGS="sizes=[64] data=synthetic"
	$(BIN)/python -m benchmarks.speed $(ARGS)

lint: install ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
