# The README's commands.  Each target creates .venv in the checkout if missing and installs
# fastopt (compiled with scikit-build-core) with the extras it needs, then runs.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
SOURCES := $(shell find cpp python -type f \( -name '*.py' -o -name '*.cpp' -o -name '*.hpp' \)) \
           pyproject.toml CMakeLists.txt
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

# Rebuild and reinstall when a source file changed since the last install.
$(VENV)/.installed: $(VPY) $(SOURCES)
	$(VPY) -m pip install --quiet ".[test,demo,tensorboard]"
	touch $@

install: $(VENV)/.installed

test: install
	$(VPY) -m pytest -q $(PYTEST_ARGS)

demo: install
	$(VPY) -m fastopt demo

bench: install
	$(VPY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops \
	    --benchmark-json=.benchmarks/latest.json -q
	$(VPY) benchmarks/report.py .benchmarks/latest.json

clean:
	rm -rf $(VENV) build .benchmarks
