# Every target creates the virtual environment it needs when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The documented fallback route: stock client and env on pure-Python protobuf 3.20.3.
PB3_VENV := .venv-pb3
PB3_PY := $(PB3_VENV)/bin/python
MLAGENTS := mlagents-envs==1.1.0
# mlagents-envs' real runtime needs on that route (no torch/tensorboard: they need protobuf>=6)
PB3_DEPS := protobuf==3.20.3 "grpcio>=1.60" "numpy>=2.0" cloudpickle pyyaml filelock Pillow
ARGS ?=

RUN ?= drone

.PHONY: install install-pb3 install-bench run test bench bench-mujoco plot flags-doc clean

install: $(VENV)/.installed $(VENV)/.installed-pth

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python $(MLAGENTS)
	touch $@

# The start-up .pth that installs the protobuf fast path in every process of the venv;
# rewritten when the module that writes it changes (an existing venv keeps an old one).
$(VENV)/.installed-pth: $(VENV)/.installed envs/protobuf_compat.py
	$(PY) -c "from envs import protobuf_compat as m; print('protobuf fast path:', m.install_pth())"
	touch $@

install-pb3: $(PB3_VENV)/.installed

$(PB3_VENV)/.installed: Makefile
	test -x $(PB3_PY) || $(PYTHON) -m venv $(PB3_VENV)
	$(PB3_PY) -m pip install --quiet --upgrade pip
	$(PB3_PY) -m pip install --quiet $(PB3_DEPS)
	$(PB3_PY) -m pip install --quiet --no-deps --ignore-requires-python $(MLAGENTS)
	$(PB3_PY) -m pip install --quiet --no-deps -e .
	touch $@

run: install
	$(PY) launch.py $(ARGS)

test: install install-pb3
	$(VENV)/bin/lint-imports  # the layering (pyproject.toml [tool.importlinter])
	$(PY) -m pytest $(ARGS)

plot: install
	$(PY) launch.py plot --run-id $(RUN)

flags-doc: install
	$(PY) tools/flags_doc.py

bench: install install-pb3
	$(PY) -m bench.env_throughput $(ARGS)

# Stable-Baselines3, for bench/mujoco.py only (the trainer never imports it).
install-bench: $(VENV)/.installed-bench

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $@

bench-mujoco: install-bench
	$(PY) -m bench.mujoco $(ARGS)

clean:
	rm -rf $(VENV) $(PB3_VENV) *.egg-info
