# allframe-lab: `make demo` and `make test` set everything up from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Install from the public index only (ignore machine-local pip configuration).
PIP := PIP_CONFIG_FILE=/dev/null $(PY) -m pip
STAMP := $(VENV)/.installed
# The JupyterLab extension (TypeScript, built by `pip install` through hatch-jupyter-builder).
EXT := extensions/allframe-lab-ext
EXT_SOURCES := $(wildcard $(EXT)/src/*.ts $(EXT)/src/*/*.ts $(EXT)/style/*) $(EXT)/package.json \
  $(EXT)/yarn.lock $(wildcard allframe_lab/notebook/schemas/*.json)
LABEXT := $(VENV)/share/jupyter/labextensions/allframe-lab-ext
CHROMIUM := /usr/bin/chromium

.PHONY: demo test bench lint clean venv labextension

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: installing Debian's python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PIP) install --quiet --upgrade pip
	@command -v node >/dev/null || { echo "Node.js >= 20.19 is needed to build the JupyterLab extension in $(EXT)"; exit 1; }
	$(PIP) install --quiet -e ".[test,notebook,lab,bench]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# Editable installs COPY the built labextension into the venv: rebuild and re-copy it when the
# TypeScript, styles, lockfile or the shared JSON schemas change.
$(LABEXT)/.built: $(STAMP) $(EXT_SOURCES)
	cd $(EXT) && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm install && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm build:prod
	rm -rf $(LABEXT) && mkdir -p $(LABEXT)
	cp -r $(EXT)/labextension/. $(EXT)/install.json $(LABEXT)/
	touch $@

labextension: $(LABEXT)/.built

# Browser tests drive Debian's chromium (never `playwright install`).
$(CHROMIUM):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

demo: $(STAMP)
	$(PY) -m allframe_lab.demo --out demo

test: $(STAMP) $(LABEXT)/.built $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf demo .pytest_cache .hypothesis
