# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A CPU wheel of torch when none is present; a user's own CUDA build is left alone.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The headline result on a CPU in under 10 minutes: on SetUnion27 and SetShatter27,
# contrastive scorers of small dim fail where d = 27, the joint scorer and the classifier
# succeed (the demo preset: the quick recipes, shatter's small dims on fewer steps).
DEMO := runs/demo
demo: $(STAMP)
	$(PY) -m set_env --png $(DEMO)/queries
	$(PY) -m train.sweep --preset demo --out $(DEMO) --games Union,Shatter --jobs 2
	$(PY) -m eval.report $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.envs

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
