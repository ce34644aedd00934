# Quick start: `make demo` and `make test`. Both create their virtual environments when missing.
PYTHON ?= python3
VENV := .venv
BVENV := .venv-blender
B42VENV := .venv-blender42
B45VENV := .venv-blender45
BIN := $(VENV)/bin
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: demo test lint bench venv blender-venv blender42-venv blender45-venv clean addon

venv: $(VENV)/.installed
blender-venv: $(BVENV)/.installed
blender42-venv: $(B42VENV)/.installed
blender45-venv: $(B45VENV)/.installed

# torch first, pinned: its CPU build is what these machines have; a bare 'torch' would pull CUDA.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) torch==2.13.0
	$(BIN)/pip install $(PIP_FLAGS) -e ".[dev]"
	touch $@

# Blender as a Python module needs numpy<2, so it lives in its own environment.
$(BVENV)/.installed:
	test -x $(BVENV)/bin/python || $(PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/pip install $(PIP_FLAGS) "bpy==5.0.1" "numpy>=1.26,<2"
	touch $@

# The oldest Blender the extension supports (4.2, the first with extensions; Action.fcurves, no slots).
$(B42VENV)/.installed:
	test -x $(B42VENV)/bin/python || $(PYTHON) -m venv $(B42VENV)
	$(B42VENV)/bin/pip install $(PIP_FLAGS) "bpy==4.2.0" "numpy>=1.26,<2"
	touch $@

# Blender 4.5 LTS, what most users run: both the old Action.fcurves and the slotted-action API exist.
$(B45VENV)/.installed:
	test -x $(B45VENV)/bin/python || $(PYTHON) -m venv $(B45VENV)
	$(B45VENV)/bin/pip install $(PIP_FLAGS) "bpy==4.5.15" "numpy>=1.26,<2"
	touch $@

# The installable Blender extension zip in dist/ (the python-osc wheel is downloaded, never committed).
addon: venv
	$(BIN)/python blender_addon/build.py --out dist

demo: venv
	$(BIN)/avatar-bridge demo

test: venv blender-venv blender42-venv blender45-venv
	$(BIN)/ruff check avatar_bridge tests benchmarks examples blender_addon
	AVATAR_BRIDGE_BLENDER_PYTHON=$(abspath $(BVENV))/bin/python \
		AVATAR_BRIDGE_BLENDER42_PYTHON=$(abspath $(B42VENV))/bin/python \
		AVATAR_BRIDGE_BLENDER45_PYTHON=$(abspath $(B45VENV))/bin/python $(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check avatar_bridge tests benchmarks examples blender_addon

bench: venv
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_au_agreement.py

clean:
	rm -rf $(VENV) $(BVENV) $(B42VENV) $(B45VENV) out build dist .pytest_cache
