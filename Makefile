# crossmodal: two commands do everything.
#   make reproduce   install what is missing, render the studio data, run every section notebook, write the report
#   make test        install what is missing, then nbdev_test (tiny profile) and pytest
# Each step is idempotent: a second run skips what is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= studio
ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TF_USE_LEGACY_KERAS := 1
export MPLBACKEND := Agg
export PYTHONWARNINGS := ignore::DeprecationWarning
export PYTHONFAULTHANDLER := 1

.PHONY: reproduce test test-paper install install-paper lock assets system-packages npm-packages clean-venv

reproduce: install
	$(BIN)/crossmodal reproduce --profile $(PROFILE) $(ARGS)

test: install
	$(BIN)/nbdev_test --n_workers 2 --timing
	$(BIN)/python -m pytest -q tests

install: $(VENV)/.installed assets

# The virtual environment and the package (editable, with the dev extra), every version pinned by constraints.txt.
$(VENV)/.installed: setup.py settings.ini constraints.txt assets/install_lightfm.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt --upgrade pip
	# the cluster extra (Ray) is installed too, so the tests exercise the Ray backends; the local path never imports it
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,cluster]"
	# musicnn (weights of the four checkpoints), laion-clap, hearbaseline (the HEAR organisers' baseline, a real third-party
	# HEAR module for the adapter's tests) and hearvalidator (the official HEAR checker) pin ancient numpy or a TensorFlow
	# in their metadata: no deps
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps musicnn laion-clap hearbaseline hearvalidator
	# LightFM (WARP, the authors' CF model) has only an sdist that pip's build hooks cannot build: built from setup.py
	$(BIN)/python assets/install_lightfm.py
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	# numba compiles librosa's cached ufuncs when their submodules are first imported (`import librosa` alone is lazy and
	# compiles nothing): do it once here, because two test workers writing the same numba cache at once can segfault
	# (numba issue 10128; seen here as a worker dying in nbdev_test), and it costs a first notebook ~30 s otherwise
	$(BIN)/python -c 'import librosa.core, librosa.util, librosa.feature, librosa.filters, librosa.effects, librosa.beat'
	@touch $@

# Refresh constraints.txt: resolve the unpinned requirements of settings.ini in a throw-away virtual environment and
# freeze it (pip, setuptools and wheel included). Commit the result; the next `make install` uses it.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[dev,cluster]"
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-deps musicnn==0.1.0 laion-clap==1.1.7 hearbaseline==2021.1.1 hearvalidator==2021.0.2
	$(LOCK_VENV)/bin/python assets/install_lightfm.py
	{ echo "# Every package 'make install' installs, pinned (resolved on Python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())'), $$(date -u +%Y-%m-%d)). Refresh: make lock"; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v '^lightfm @'; } > constraints.txt
	rm -rf $(LOCK_VENV)

# The paper profile's extra packages (OpenL3, VGGish, YAMNet, ResNet50, VGG16, LAION-CLAP; TensorFlow for VGGish's
# original checkpoint). Not needed offline; weights are never downloaded by the package.
install-paper: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,cluster,paper]"

# The tests that need the paper extra: the official HEAR validator (it imports TensorFlow at module level) with the real
# TensorFlow on every exported audio module, and the paper models' tests.
test-paper: install-paper
	$(BIN)/python -m pytest -q tests/test_hear.py tests/test_paper_embedders.py

assets: system-packages npm-packages

# Debian packages listed in assets/apt.txt: installed only when one is missing.
system-packages:
	@missing=$$(grep -v '^\s*#' assets/apt.txt | xargs -r -n1 sh -c 'dpkg-query -W -f="\$${Status}\n" "$$0" 2>/dev/null | grep -q "ok installed" || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# npm pictogram sets, pinned in assets/package.json and assets/package-lock.json.
npm-packages: assets/node_modules/.package-lock.json

assets/node_modules/.package-lock.json: assets/package.json assets/package-lock.json
	cd assets && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean-venv:
	rm -rf $(VENV)
