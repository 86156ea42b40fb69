# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean gpu-wheels

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# A CPU wheel of torch when none is present; a user's own CUDA build is left alone.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev,ray]"
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

# A GPU machine with torch but no package registry lacks gymnasium (and stable-baselines3,
# for RL): their wheels, for Python 3.12, at the versions installed here, go into .whl/.
# There: python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
GPU_WHEELS := gymnasium farama-notifications cloudpickle stable-baselines3
gpu-wheels: $(STAMP)
	rm -rf .whl
	for name in $(GPU_WHEELS); do \
		version=$$($(PY) -c "import importlib.metadata as m; print(m.version('$$name'))") && \
		$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
			--implementation py -d .whl "$$name==$$version" || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
