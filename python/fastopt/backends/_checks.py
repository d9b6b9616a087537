"""Argument checks shared by the pure-Python backends.

The compiled backend does the same checks in C++ (cpp/src/bindings.cpp, ``collect``)
with the same exception types and messages; tests hold every backend to them.  Every
array of every row is checked before any is written.
"""

from __future__ import annotations

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_F32 = np.dtype(np.float32)


def is_half(dtype):
    """True for float16 and bfloat16 (``ml_dtypes.bfloat16``, recognised by its name: its
    kind is 'V', and fastopt does not import ml_dtypes): the half-precision storage types,
    whose state arrays and arithmetic are float32."""
    return dtype.itemsize == 2 and (
        dtype.kind == "f" or (dtype.kind == "V" and dtype.name == "bfloat16")
    )


def is_float(dtype):
    """A floating-point dtype: numpy's (kind 'f') or bfloat16."""
    return dtype.kind == "f" or is_half(dtype)


def dtype_tag(dtype):
    """A dtype as checkpoints record it: ``dtype.str`` ('<f4'), or the name of bfloat16
    (whose ``str`` is the anonymous '<V2')."""
    return dtype.name if dtype.kind == "V" and is_half(dtype) else dtype.str


def on_float32(rule, rows):
    """Run ``rule(rows)`` with every half-precision row's parameter and gradient replaced by
    float32 copies (exact), then write each such parameter back from its copy, rounded to
    nearest even: one rounding per step, the half-precision spec of the NumPy reference
    (and of the matrix optimizers' steps, on any backend)."""
    wide = [
        [r[0].astype(np.float32), r[1].astype(np.float32), *r[2:]] if is_half(r[0].dtype) else r
        for r in rows
    ]
    rule(wide)
    with np.errstate(over="ignore"):  # rounding past the largest half value gives inf
        for r, w in zip(rows, wide):
            if w is not r:
                r[0][...] = w[0]


def state_dtype(dtype):
    """The dtype of the state arrays (and of the arithmetic) of a parameter of ``dtype``:
    float32 for a half-precision parameter, else the parameter's own."""
    return _F32 if is_half(dtype) else dtype


def _key(names, i):
    return repr(names[i]) if names is not None else str(i)


def _byte_bounds(a, contiguous):
    """``(lo, hi)``: the lowest and one past the highest byte address of non-empty ``a``,
    negative strides included (as ``np.byte_bounds``)."""
    lo = hi = a.__array_interface__["data"][0]
    if contiguous:
        return lo, hi + a.nbytes
    for n, st in zip(a.shape, a.strides):
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return lo, hi + a.itemsize


def collect(slots, names=None, others=()):
    """Check a multi-tensor call and return its rows.

    ``slots`` is a list of ``(role, seq_or_None, writable)``; slot 0 is the parameters.
    Returns a list of rows, each a list with one array (or None) per slot.  Non-contiguous
    read-only inputs (gradients) are replaced by contiguous copies.  ``others`` is an
    iterable of ``((name, key), array)``: further arrays written by the caller (the
    optimizer's state, shown as ``state[name][key]``) that no array of the call may share
    memory with; their labels are only formatted for an error message.
    """
    seqs = []
    nrows = None
    for role, seq, _w in slots:
        if seq is None:
            seqs.append(None)
            continue
        if isinstance(seq, (np.ndarray, str, bytes, dict)) or not hasattr(seq, "__len__"):
            raise TypeError(f"{role} must be a list of numpy arrays, got {type(seq)}")
        seq = list(seq)
        if nrows is None:
            nrows = len(seq)
        elif len(seq) != nrows:
            raise ValueError(
                f"{role} has {len(seq)} arrays but params has {nrows}; "
                "pass exactly one per parameter, in the same order"
            )
        seqs.append(seq)
    rows = []
    intervals = []
    for i in range(nrows or 0):
        row = []
        p0 = None
        for s, (role, _seq, writable) in enumerate(slots):
            if seqs[s] is None:
                row.append(None)
                continue
            a = seqs[s][i]
            label = f"{role}[{_key(names, i)}]"
            if a is None:
                raise TypeError(
                    f"{label} is None; fastopt needs a gradient for every parameter at every "
                    "step (put frozen parameters in no optimizer)"
                )
            if not isinstance(a, np.ndarray):
                raise TypeError(
                    f"{label} must be a numpy array, got {type(a)}; convert it with np.asarray(...)"
                )
            if type(a) is not np.ndarray and not isinstance(a, np.memmap):
                raise TypeError(_subclass_message(label, a))
            if s == 0:
                if a.dtype not in _FLOATS and not is_half(a.dtype):
                    raise TypeError(
                        f"{label} has dtype {a.dtype}; fastopt updates float32, float64, "
                        "float16 or bfloat16 arrays in place: create the parameter with "
                        "dtype=np.float32 or np.float64"
                    )
                p0 = a
                half = is_half(a.dtype)
            else:
                if s >= 2 and half:
                    if a.dtype != _F32:
                        raise TypeError(
                            f"{label} has dtype {a.dtype} but the state of a {p0.dtype} "
                            "parameter is float32; pass a float32 array (for example "
                            "np.zeros(p.shape, np.float32))"
                        )
                elif a.dtype != p0.dtype:
                    hint = "p.dtype" if half else f"np.{p0.dtype}"
                    raise TypeError(
                        f"{label} has dtype {a.dtype} but its parameter has {p0.dtype}; pass an "
                        f"array of dtype {p0.dtype} (for example g.astype({hint}))"
                    )
                if a.shape != p0.shape:
                    raise ValueError(
                        f"{label} has shape {a.shape} but its parameter has {p0.shape}; "
                        "pass an array of the parameter's shape"
                    )
            flags = a.flags
            if not flags.aligned:
                raise ValueError(_aligned_message(label, a))
            contiguous = flags.c_contiguous
            # The memory the caller's array addresses, before any contiguous copy: a strided
            # view of a parameter or state array is as much an alias as the array itself.
            if a.size:
                intervals.append((*_byte_bounds(a, contiguous), writable, label))
            if writable:
                if not contiguous:
                    raise ValueError(
                        f"{label} is not C-contiguous; fastopt updates arrays in place and will "
                        "not update a copy: use np.ascontiguousarray(...) once when you create "
                        "it and keep that array"
                    )
                if not flags.writeable:
                    raise ValueError(
                        f"{label} is read-only; fastopt updates it in place: pass a writeable "
                        "array (a.setflags(write=True) or a.copy())"
                    )
            elif not contiguous:
                a = np.ascontiguousarray(a)
            row.append(a)
        rows.append(row)
    for label, a in others:
        if a.size:
            intervals.append((*_byte_bounds(a, a.flags.c_contiguous), True, label))
    check_no_overlap(intervals)
    return rows


def _label(label):
    return label if isinstance(label, str) else f"state[{label[0]!r}][{label[1]!r}]"


def _subclass_message(label, a):
    return (
        f"{label} is a {type(a)}, an ndarray subclass; fastopt updates plain numpy arrays "
        "(np.memmap is fine) and would not honour the subclass: pass np.asarray(x) (a plain "
        "array of the same memory) and keep that array"
    )


def _aligned_message(label, a):
    return (
        f"{label} is not aligned: its data does not start on a multiple of its "
        f"{a.itemsize}-byte element size; fastopt reads whole elements: pass an aligned copy, "
        "x.copy() (np.ascontiguousarray(x) keeps a misaligned array as it is), and keep it"
    )


def check_no_overlap(intervals):
    """Raise if an interval that is written overlaps any other interval."""
    intervals.sort(key=lambda t: t[0])
    end_all = end_w = 0
    last_all = last_w = None
    for lo, hi, writable, label in intervals:
        clash = None
        if writable and last_all is not None and lo < end_all:
            clash = last_all
        elif not writable and last_w is not None and lo < end_w:
            clash = last_w
        if clash is not None:
            label, clash = _label(label), _label(clash)
            raise ValueError(
                f"{label} shares memory with {clash}; every parameter, gradient and state array "
                "must be a separate array (pass grad.copy() if the gradient is a view of a parameter)"
            )
        if hi > end_all:
            end_all, last_all = hi, label
        if writable and hi > end_w:
            end_w, last_w = hi, label
