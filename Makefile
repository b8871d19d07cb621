# Two commands set everything up: `make test` and `make book`. Both create or refresh .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PARAMS ?= params/default.yaml
JOBS   ?= 1
TEST_JOBS ?= 2  # pytest workers; each test file runs whole on one worker (the smoke book is shared in its file)
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lint-imports test test-fast test-slow book lab bench clean

install: $(STAMP)

# Every extra (book, interpret, spotify, audio, dev, maintainer, tune, folk): see pyproject.toml.
# The predictor alone needs only the core: `pip install .`
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing geomusic and every extra into $(VENV) (torch, Jupyter Book, shap, librosa, ...):"
	@echo "this takes a few minutes the first time, seconds afterwards."
	$(PY) -m pip install --progress-bar on --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[all]'
	@touch $(STAMP)
	@echo "Installed into $(VENV)."

lint-imports: $(STAMP)  ## the library's layers (import-linter contracts in pyproject.toml)
	$(VENV)/bin/lint-imports --no-cache

test: lint-imports  ## the layers, then every test, offline: unit tests, the smoke book via papermill, kill-and-resume, browser check
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-fast: lint-imports  ## the layers and the unit tests (about two minutes)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not slow"

test-slow: $(STAMP)  ## the end-to-end tests only
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m slow

book: $(STAMP)  ## run every notebook with papermill on $(PARAMS), then build the Jupyter Book
	$(VENV)/bin/geomusic run --params $(PARAMS) --jobs $(JOBS)

lab: $(STAMP)  ## explore the notebooks in JupyterLab
	$(PY) -m jupyter lab notebooks/

bench: $(STAMP)  ## print the benchmark figures (UCI 10-fold CV, throughput, Spotify extraction, MIRAGE at 10K, 100K and 1M events)
	$(PY) benchmarks/bench_uci_cv.py
	$(PY) benchmarks/bench_throughput.py
	$(PY) benchmarks/bench_spotify_extraction.py
	$(PY) benchmarks/bench_mirage_scale.py --sizes 10000 100000 1000000 --jobs 2  # hours on 2 cores: see benchmarks/README.md

clean:
	rm -rf _build book/notebooks runs/smoke
