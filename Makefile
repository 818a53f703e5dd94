# Two commands do all the set-up on a fresh machine:
#   make demo   -- tokenize the bundled default image
#   make test   -- run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# A CPU build of torch that is on this machine's disk; never let pip pick a CUDA build.
TORCH  ?= torch==2.13.0
SHARED_WHEELS ?= ../shared/wheels

.PHONY: demo test bench scatter clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]" "$(TORCH)"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/dhtgraph demo --out out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

# Optional accelerators (torch-scatter / torch-cluster); the core never needs them.
scatter: $(VENV)/.installed
	$(PY) -m pip install -q --no-index --find-links $(SHARED_WHEELS) torch-scatter torch-cluster

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]" "$(TORCH)"
	$(PY) benchmarks/components.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
