# The two front-door commands: `make demo` (main job on a generated dataset) and `make test`.
# `make docs` executes the notebooks and renders them to HTML in docs/_build (scripts/build_docs.py).
# `make image` builds the container image (scripts/build_image.sh: podman or docker, root).
# Each creates .venv and installs what it needs on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test docs venv image clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/bizra demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

docs: $(STAMP)
	$(BIN)/python scripts/build_docs.py

image: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) scripts/build_image.sh $(IMAGE)

clean:
	rm -rf $(VENV) demo-out artifacts docs/_build
