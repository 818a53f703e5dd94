# Two commands do all the set-up on a fresh machine:
#   make demo   -- tokenize the bundled default image
#   make test   -- run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# torch is installed first, pinned: on this project's machines pip takes the CPU build of
# 2.13.0 from local disk. Elsewhere PyPI's Linux wheel of that version is a CUDA build; for
# a CPU-only install pass TORCH_INDEX=https://download.pytorch.org/whl/cpu.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
SHARED_WHEELS ?= ../shared/wheels
# The 0.1.0 checkout benchmarks/budget.py compares against (its before/after mode).
BUDGET_BASE ?= /tmp/base-budget

.PHONY: demo test bench scatter clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[test]" "$(TORCH)"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/dhtgraph demo --out out/demo

# The core tests again with the native kernels off: the tensor path that CUDA tensors and
# machines without a C compiler take (dhtgraph/_native).
TENSOR_PATH_TESTS ?= tests/hierarchy tests/graph tests/selection tests/properties \
	tests/features tests/test_tokenize.py tests/test_partition.py tests/nn/test_tokenizer.py \
	tests/nn/test_tokens.py

test: $(VENV)/.installed
	$(PY) -m pytest -q
	DHTGRAPH_NATIVE=off $(PY) -m pytest -q $(TENSOR_PATH_TESTS)

# Optional accelerators (torch-scatter / torch-cluster); the core never needs them.
scatter: $(VENV)/.installed
	$(PY) -m pip install -q --no-index --find-links $(SHARED_WHEELS) torch-scatter torch-cluster

# Every benchmark, in its quick mode where it has one (the full runs: drop --quick).
bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]" "$(TORCH)"
	$(PY) benchmarks/components.py
	$(PY) benchmarks/tokenize.py
	$(PY) benchmarks/speed.py --quick
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/quality.py --quick
	@if [ -d $(BUDGET_BASE) ]; then $(PY) benchmarks/budget.py --seeds 2 --baseline $(BUDGET_BASE); \
	else echo "benchmarks/budget.py before/after skipped: needs 0.1.0 at $(BUDGET_BASE) (git worktree add $(BUDGET_BASE) 02e1659)"; fi
	$(PY) benchmarks/budget.py --assembly
	$(PY) benchmarks/vectorize.py
	$(PY) benchmarks/contention.py --quick
	$(PY) benchmarks/model.py
	$(PY) benchmarks/pooling.py --quick
	$(PY) benchmarks/shards.py
	$(PY) benchmarks/study.py --quick

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
