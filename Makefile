# The README's commands.  Each target creates .venv in the checkout if missing and installs
# fastopt (compiled with scikit-build-core) with the extras it needs, then runs.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
SOURCES := $(shell find cpp python cmake -type f \( -name '*.py' -o -name '*.cpp' -o -name '*.hpp' \
             -o -name '*.h' -o -name '*.in' -o -name '*.inc' \)) pyproject.toml CMakeLists.txt
PYTEST_ARGS ?=
# The extras the make targets use: numba is an optional extra for users (fastopt[numba]) but
# the test suite checks that backend too; lint brings ruff and clang-format.
EXTRAS := numba,test,lint,demo,tensorboard,mpi
# The CMake build directory is kept between installs (incremental rebuilds); it is passed
# here and not set in pyproject.toml so that `pip install` from a read-only tree works.
BUILD_DIR := build/{wheel_tag}
CPP_FILES := $(shell find cpp -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.inc' \))

.PHONY: install test demo bench bench-peers clean lint

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

# Rebuild and reinstall when a source file changed since the last install.
$(VENV)/.installed: $(VPY) $(SOURCES)
	$(VPY) -m pip install --quiet -Cbuild-dir=$(BUILD_DIR) ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

test: install
	$(VPY) -m pytest -q $(PYTEST_ARGS)

# ruff (lint and format check) over the Python sources, clang-format over the C++ ones,
# mypy (strict, configured in pyproject.toml) over the package; checks only, nothing is
# rewritten (`ruff format`, `clang-format -i` do that).
lint: install
	$(VENV)/bin/ruff check python tests benchmarks
	$(VENV)/bin/ruff format --check python tests benchmarks
	$(VENV)/bin/clang-format --dry-run --Werror $(CPP_FILES)
	$(VENV)/bin/mypy

demo: install
	$(VPY) -m fastopt demo

bench: install
	$(VPY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops \
	    --benchmark-json=.benchmarks/latest.json -q
	$(VPY) benchmarks/report.py .benchmarks/latest.json

# Peers (benchmarks/bench_peers.py): installs the `peers` extra of pyproject.toml into the
# venv without reinstalling fastopt, with torch pinned to the version already there (pip must
# not swap it for another build), and keeps DeepSpeed's JIT-built cpu_adam op (about 8 minutes
# of ninja on 2 cores, the first time) in the checkout.  `make clean` removes that cache too.
PEERS_STAMP   := $(VENV)/.peers-installed
TORCH_EXT_DIR := $(CURDIR)/.benchmarks/torch_extensions
PEERS_ARGS    ?=

$(PEERS_STAMP): $(VENV)/.installed pyproject.toml
	$(VPY) -c "import importlib.metadata as m; print('torch==' + m.version('torch').split('+')[0])" \
	    > $(VENV)/peers-constraints.txt 2>/dev/null || : > $(VENV)/peers-constraints.txt
	DS_BUILD_OPS=0 $(VPY) -m pip install --quiet -c $(VENV)/peers-constraints.txt \
	    $$($(VPY) benchmarks/bench_peers.py --requirements)
	touch $@

bench-peers: install $(PEERS_STAMP)
	mkdir -p $(TORCH_EXT_DIR)
	TORCH_EXTENSIONS_DIR=$(TORCH_EXT_DIR) DS_BUILD_OPS=0 DS_ACCELERATOR=cpu \
	    BENCH_PEERS_COMMAND="make bench-peers" $(VPY) benchmarks/bench_peers.py \
	    --json .benchmarks/peers.json --markdown .benchmarks/peers.md $(PEERS_ARGS)

clean:
	rm -rf $(VENV) build .benchmarks

# AddressSanitizer + UndefinedBehaviorSanitizer: build the extension instrumented (its own
# venv and build directory, so the normal install is untouched) and run the test suite
# under it, less the tests marked slow (a wheel build, mypy and pyright runs: they do not
# exercise the extension, and `make test` runs them).  Python itself is not instrumented, so libasan is preloaded (with libstdc++, or
# ASan cannot intercept C++ exceptions thrown by the extension); leak detection is
# off (CPython keeps objects alive at exit by design); any UB report aborts the run.
SAN_VENV  := .venv-sanitize
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g

.PHONY: sanitize
sanitize:
	test -x $(SAN_VENV)/bin/python || $(PYTHON) -m venv $(SAN_VENV)
	CFLAGS="$(SAN_FLAGS)" CXXFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
	    $(SAN_VENV)/bin/python -m pip install --quiet --no-cache-dir --force-reinstall \
	    -Cbuild-dir=build/sanitize -Ccmake.build-type=Debug ".[numba,test]"
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(SAN_VENV)/bin/python -m pytest -q \
	    -p no:cacheprovider -o addopts="-ra --strict-markers -p no:randomly" -m "not slow and not cpu_time" \
	    $(PYTEST_ARGS)
