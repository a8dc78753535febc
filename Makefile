# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo live test lint bench clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Every task is a fresh spawned interpreter that imports asyncflow: compiled
# bytecode (which an editable install does not write, nor does Python where
# PYTHONDONTWRITEBYTECODE is set) takes ~40 ms off each one's start-up.
COMPILE := $(PY) -m compileall -q src examples benchmarks tests > /dev/null

demo: $(STAMP)
	$(COMPILE)
	$(PY) -m examples.video_demo

# The live-video example: a paced camera, a detector slower than it, REALTIME.
live: $(STAMP)
	$(COMPILE)
	$(PY) -m examples.live_demo

# The web view's browser tests drive Debian's Chromium through Playwright (whose own browser
# download is not reachable here): installed with apt-get when missing (as root, or with sudo -n).
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo > /dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then \
			echo "$(CHROMIUM) is missing and apt-get needs root: the browser tests will be skipped"; \
		else \
			echo "installing Debian's chromium for the browser tests"; \
			$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium > /dev/null \
				|| echo "could not install chromium: the browser tests will be skipped"; \
		fi; \
	fi

test: $(STAMP) chromium
	$(COMPILE)
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy --strict src/asyncflow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy --strict src/asyncflow

BENCH_STAMP := $(VENV)/.installed-bench
BENCH_ARGS ?=

# The bench extra, then videoflow 0.2.10 (a peer to compare with) without its declared deps:
# it asks for the GUI build of OpenCV (which clashes with a headless one) and only needs `import cv2`.
$(BENCH_STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m pip install -q --no-deps 'videoflow==0.2.10'
	$(PY) -m pip install -q 'opencv-python-headless>=4.8,<5' 'requests>=2.22,<3' 'six>=1.9'
	touch $@

# Every workload against its baselines: a table, benchmarks/results/{results.json,*.png}.
# make bench BENCH_ARGS=--quick   for a smoke run
bench: $(BENCH_STAMP)
	$(COMPILE)
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info out
