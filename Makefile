# The book's two commands: `make book` builds the site, `make test` runs the tests.
# Both create .venv/ on a fresh clone. `make help` lists the rest.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gaplab-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Chapters keep their threads to what a two-core laptop has; the book is built on such machines.
export OMP_NUM_THREADS ?= 2
export PYTHONHASHSEED := 0

BOOK_SOURCES := _config.yml _toc.yml references.bib scripts/build_book.py $(wildcard book/*.md) $(wildcard notebooks/*.ipynb) \
	$(shell find lib/gaplab -name '*.py') $(shell find data -type f)
ASSETS := _static/vega-bundle.js _assets/mathjax/tex-mml-chtml.js

.PHONY: help venv book test test-site test-wheel bench record assets sync student address lint clean clean-cache course-cache

help:
	@echo "make book       build the site into _build/html (executes every chapter at profile=auto)"
	@echo "make test       unit, property and notebook tests (site tests run when _build/html exists)"
	@echo "make test-site  tests of the built site only (requires make book first)"
	@echo "make bench      speed of the gap measures, MAD generation and training -> benchmarks/results/*.json"
	@echo "make record     on a GPU: execute the chapters at paper -> data/recorded/paper/*.json (resumes)"
	@echo "make sync       regenerate notebooks/*.ipynb from their notebooks_py/*.py twins"
	@echo "make student    write notebooks/student/*.ipynb: the chapters without solutions, with self-checks"
	@echo "make address    write the repository address of _config.yml into the Colab cells, guide, citation"
	@echo "make test-wheel build the sdist and wheel, check them; core wheel, Colab's install, models extra in fresh venvs"
	@echo "make lint       the pre-commit checks on every file (ruff, jupytext sync, student notebooks, nbstripout, mypy)"
	@echo "make course-cache  train the chapters' runs at cpu (what is missing) and pack them into _build/course-runs.tar"
	@echo "make clean      remove the build (keeps .venv)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		echo ">> creating $(VENV) with $(PYTHON_BOOTSTRAP)"; \
		$(PYTHON_BOOTSTRAP) -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[book,test,realdata]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3 (gaplab)" >/dev/null
	touch $@

# Offline copies of what the site would otherwise load from CDNs: vega (from vl-convert) and the
# ipywidgets html-manager, require.js and MathJax (from the npm registry).
assets: $(ASSETS)

_static/vega-bundle.js: $(STAMP) scripts/offline_assets.py
	$(PY) scripts/offline_assets.py vega $@

_assets/mathjax/tex-mml-chtml.js: $(STAMP) scripts/offline_assets.py
	$(PY) scripts/offline_assets.py npm _assets

book: _build/html/.built

_build/html/.built: $(STAMP) $(ASSETS) $(BOOK_SOURCES)
	$(PY) scripts/build_book.py
	touch $@

test: $(STAMP)
	$(PY) -m pytest -n auto

# The sdist and wheel built and checked; the core wheel alone, Colab's install (a chapter run and recorded)
# and the wheel with the models extra, each in a fresh environment (scripts/test_wheel.sh)
test-wheel: $(STAMP)
	bash scripts/test_wheel.sh

test-site: $(STAMP)
	GAPLAB_REQUIRE_SITE=1 $(PY) -m pytest -n auto -m site

bench: $(STAMP)
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_mad.py
	$(PY) benchmarks/compare_grid.py
	$(PY) benchmarks/compare_precision.py

# The papers' scale, for a GPU: each chapter's values and claim verdicts with device, date and commit.
record: $(STAMP)
	$(PY) -m gaplab record --profile paper

# A teacher's archive of every run the chapters need at `cpu`, for students to import or share read-only.
course-cache: $(STAMP)
	$(PY) -m gaplab cache prepare --profile cpu --jobs auto
	mkdir -p _build
	$(PY) -m gaplab cache export --profile cpu --out _build/course-runs.tar

sync: $(STAMP)
	$(PY) -m jupytext --sync notebooks_py/*.py

student: $(STAMP)
	$(PY) -m gaplab.teach.student

# A fork edits repository.url in _config.yml, then: make address sync student
address: $(STAMP)
	$(PY) scripts/repo_address.py

lint: $(STAMP)
	$(PY) -m pre_commit run --all-files --show-diff-on-failure

clean:
	rm -rf _build _static/vega-bundle.js _assets

clean-cache:
	rm -rf _build/.jupyter_cache
