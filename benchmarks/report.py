#!/usr/bin/env python3
"""Turn a pytest-benchmark JSON of bench_optimizers.py into a Markdown table.

Usage: python benchmarks/report.py .benchmarks/latest.json [> table.md]

For each optimizer and case: the median time of a step for every implementation, the
bandwidth of fastopt native in GB/s (bytes moved per step, from the table in
docs/design.md, / median time), and the ratios measured in the same run: fastopt /
PyTorch fused (speed-up, >1 is faster), fastopt / PyTorch's best, fastopt / hand-written
NumPy, native / probe (fraction of the bandwidth a no-arithmetic kernel moving the same
bytes reaches) and numba / native.
"""

import json
import sys
from collections import defaultdict

# The benchmark's own order of optimizers and cases (not a copy of its lists).
from bench_optimizers import CASES as CASE_ORDER
from bench_optimizers import OPTIMIZERS

_ORDER = list(OPTIMIZERS)


def _fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms"


def _ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def main(path):
    with open(path) as f:
        data = json.load(f)
    rows = defaultdict(dict)
    info = {}
    for b in data["benchmarks"]:
        x = b["extra_info"]
        rows[(x["optimizer"], x["case"])][x["impl"]] = b["stats"]["median"]
        info[(x["optimizer"], x["case"])] = x
    mi = data.get("machine_info", {})
    cpu = mi.get("cpu", {})
    any_info = next(iter(info.values()), {})
    print(
        f"Machine: {cpu.get('brand_raw', mi.get('processor', '?'))}, "
        f"{cpu.get('count', '?')} logical CPUs, {mi.get('system', '')} {mi.get('release', '')}, "
        f"Python {mi.get('python_version', '?')}; fastopt ISA {any_info.get('isa')}, "
        f"{any_info.get('threads')} threads; torch threads {any_info.get('torch_threads')}. "
        f"Run {data.get('datetime', '')}."
    )
    print()
    print(
        "Median time of one step (float32). GB/s = bytes moved per step "
        "(docs/design.md, memory traffic) / time. Ratios are speed-ups (time of the other "
        "/ time of fastopt native), except native/probe = probe time / native time "
        "(1.0 = at the bandwidth of a kernel that moves the same bytes with no arithmetic)."
    )
    print()
    print(
        "| optimizer | case | native | GB/s | probe GB/s | native/probe | vs torch fused "
        "| vs torch best | vs NumPy | numba/native | native (nonfinite=raise) | numba "
        "| NumPy | torch | torch foreach | torch fused |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    opts = sorted({k[0] for k in rows}, key=_ORDER.index)
    for opt in opts:
        for case in CASE_ORDER:
            r = rows.get((opt, case))
            if not r:
                continue
            nbytes = info[(opt, case)]["bytes"]
            nat = r.get("native")
            probe = r.get("probe")
            tbest = min(
                [r[k] for k in ("torch", "torch-foreach", "torch-fused") if k in r], default=None
            )

            def gbs(t, nbytes=nbytes):
                return "-" if t is None else f"{nbytes / t / 1e9:.1f}"

            print(
                f"| {opt} | {case} | {_fmt_t(nat)} | {gbs(nat)} | {gbs(probe)} "
                f"| {_ratio(probe, nat)} | {_ratio(r.get('torch-fused'), nat)} "
                f"| {_ratio(tbest, nat)} | {_ratio(r.get('numpy'), nat)} "
                f"| {_ratio(nat, r.get('numba'))} | {_fmt_t(r.get('native-raise'))} "
                f"| {_fmt_t(r.get('numba'))} | {_fmt_t(r.get('numpy'))} "
                f"| {_fmt_t(r.get('torch'))} | {_fmt_t(r.get('torch-foreach'))} "
                f"| {_fmt_t(r.get('torch-fused'))} |"
            )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
