# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch. Pinned: an unpinned torch pulls several GB of CUDA packages.
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin

.PHONY: demo test faults install clean

$(BIN)/selfdenoise: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[bm3d,onnx,bioimageio,test,napari,napari-test,zarr]"
	@touch $@

install: $(BIN)/selfdenoise

demo: install
	$(BIN)/selfdenoise demo --out selfdenoise-demo

test: install
	$(BIN)/python -m pytest

# The fault-injection runs: real train and bench processes killed with SIGKILL at random points, resumed.
faults: install
	$(BIN)/python -m pytest -m faults tests/e2e/test_faults.py

clean:
	rm -rf $(VENV) selfdenoise-demo .pytest_cache

# Peer tools (CAREamics, DeepInverse) in their own environment .peers/venv: see benchmarks/peers/README.md.
peers:
	PYTHON=$(PYTHON) bash benchmarks/peers/setup.sh
.PHONY: peers
