"""Per-step time of ``opt.step`` (Adam, float32, one array of n elements): the best of 7
rounds of ``reps`` steps, in microseconds.  Compare two installs by running them in turn
(interleaved), e.g.::

    for i in 1 2 3 4 5; do for n in 1e3 1e6; do
      echo "$n old $(OLD/bin/python benchmarks/step_overhead.py $n 20000) \
              new $(.venv/bin/python benchmarks/step_overhead.py $n 20000)"; done; done
"""

import sys
import time

import numpy as np

import fastopt

n = int(float(sys.argv[1]))
reps = int(sys.argv[2])
w = np.zeros(n, np.float32)
g = np.full(n, 0.01, np.float32)
opt = fastopt.Adam([w], lr=1e-3)
for _ in range(50):
    opt.step([g])
best = []
for _r in range(7):
    t0 = time.perf_counter()
    for _ in range(reps):
        opt.step([g])
    best.append((time.perf_counter() - t0) / reps)
print(f"{min(best) * 1e6:.2f}")
