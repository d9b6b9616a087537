#!/usr/bin/env bash
# The many-core check of the performance issue, as one prepared script for a machine with
# more cores than the development VM (the device machine: 16 cores, Python with numpy,
# numba, torch, pybind11, scikit-build-core, cmake and ninja, no network).  Run from the
# repository root; it installs fastopt into the running Python without touching the
# network, then prints the machine and the tables that benchmarks/README.md "Thread
# scaling" quotes.  Everything it prints also goes to $OUT/many_cores.txt when OUT is set.
#
#     bash benchmarks/many_cores.sh              # about 4-6 minutes on 16 cores
#     THREADS=1,2,4,8,16,32 bash benchmarks/many_cores.sh
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-1,2,4,8,16}
PY=${PYTHON:-python3}
log=${OUT:+$OUT/many_cores.txt}
run() { if [ -n "$log" ]; then "$@" 2>&1 | tee -a "$log"; else "$@"; fi; }

run echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) CPUs"
run bash -c "lscpu | grep -E 'Model name|Socket|Core|Thread|NUMA node\(|L3' || true"
run bash -c "$PY -m pip install --quiet --no-build-isolation --no-deps . 2>&1 | tail -3"
run "$PY" -c "import fastopt, numpy; from fastopt import _native; print('fastopt', fastopt.__version__, 'numpy', numpy.__version__, 'ISA', _native.isa(), 'default threads', fastopt.get_num_threads())"
cd benchmarks
# Adam against torch fused and the probe at 1e6 and 1.6e7, every thread count.
run "$PY" scaling.py --threads "$THREADS" --sizes 1e6,1.6e7 --rounds 7
# Thread settings changed between rounds (idle workers of a large setting, oversubscription).
run "$PY" thread_settings.py 1e6 "$THREADS"
# The default check's cost on one and on every core.
run "$PY" check_cost.py 1e6 16e6 --threads "1,$(nproc)"
