"""Print how far fastopt's trajectories are from PyTorch's golden fixtures, per optimizer
and dtype: the largest |fastopt - torch| over all snapshots, as a fraction of max|p| of the
snapshot, and whether every snapshot was bit-identical.  The tests hold these to the bounds
of ``tests/test_torch_parity.py`` / ``tests/test_matrix_optim.py``; this script gives the
figures the docs quote.  Usage (no torch needed)::

    cd tests && python parity_report.py [backend]      # default: numpy
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

import make_matrix_fixtures as mgen
import make_torch_fixtures as gen
import test_matrix_optim as tm
import test_torch_parity as tp


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "numpy"
    worst: dict[tuple[str, str], float] = defaultdict(float)
    exact: dict[tuple[str, str], bool] = defaultdict(lambda: True)
    runs = [
        (
            case["opt"],
            dtype,
            lambda c=case, d=dtype: tp.run_fastopt(c, d, backend),
            tp.DATA[f"{case['name']}|{dtype}"],
        )
        for case in tp.FIXTURE_CASES
        for dtype in gen.DTYPES
    ] + [
        (
            opt,
            dtype,
            lambda o=opt, op=options, d=dtype: tm._replay(o, op, d, backend),
            tm.DATA[f"case{i}_{dtype}"],
        )
        for i, (opt, options) in enumerate(mgen.CASES)
        for dtype in tm.DTYPES
    ]
    for opt, dtype, run, ref in runs:
        got = run().astype(np.float64)
        ref = ref.astype(np.float64)
        scale = np.abs(ref).max(axis=1, keepdims=True)
        worst[opt, dtype] = max(worst[opt, dtype], float((np.abs(got - ref) / scale).max()))
        exact[opt, dtype] &= bool(np.array_equal(got, ref))
    print(f"backend={backend}: max |fastopt - torch| / max|p| over the fixture's snapshots")
    for (opt, dtype), w in sorted(worst.items()):
        print(f"  {opt:10s} {dtype:8s} {w:.2e}{'  (bit-identical)' if exact[opt, dtype] else ''}")


if __name__ == "__main__":
    main()
