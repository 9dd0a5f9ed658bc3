# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_RAW   := data/raw/demo
DEMO_STORE := data/processed/demo

.PHONY: demo test lint bench clean-demo

# The install: uv (a PyPI package) resolves, downloads and links the wheels in parallel and
# keeps them in its cache, several times faster than pip; where uv cannot be had or fails
# (no PyPI, only a local index in pip's config), pip installs the same requirements. Neither
# byte-compiles the environment up front (Python compiles what it imports).
# The environment is made without pip (`venv --without-pip`: 0.2 s, where seeding pip took
# 8 s of a clean clone's install) and the interpreter's own pip puts uv in it; only the
# fallback seeds pip into the environment (ensurepip) and installs with it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	{ { test -x $(BIN)/uv \
	    || $(PYTHON) -m pip --python $(BIN)/python install --quiet --no-compile uv; } \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,dask]'; } \
	|| { $(BIN)/python -m ensurepip --default-pip >/dev/null \
	  && $(BIN)/python -m pip install --quiet --no-compile -e '.[dev,dask]'; }
	touch $(STAMP)

# PYTHONDONTWRITEBYTECODE (set on some machines) with an environment installed without
# byte-compiling would make every run compile the scientific stack again (12 s of CPU a
# process on the project machine); the demo lets Python keep the bytecode it compiles.
demo: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/cxlab demo --raw $(DEMO_RAW) --store $(DEMO_STORE)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -n auto --dist loadfile -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# bench_sql.py queries the demo store: the demo first (incremental: a few seconds when done)
bench: demo  # one script per speed target, each printing its ratio against a baseline run beside it
	$(BIN)/python benchmarks/bench_io.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_sql.py
	$(BIN)/python benchmarks/bench_mixed.py
	$(BIN)/python benchmarks/bench_fit_mixed.py
	$(BIN)/python benchmarks/bench_effects.py
	$(BIN)/python benchmarks/bench_kinematics.py
	$(BIN)/python benchmarks/bench_emg.py

clean-demo:
	rm -rf $(DEMO_RAW) $(DEMO_STORE) runs/demo
