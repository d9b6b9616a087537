"""The Numba backend: ``@njit(cache=True)`` twins of the reference loops.

``step(kind, params, grads, state, scalars, names)`` is the backend interface (see
``fastopt._contract``).  Each kernel is the per-element loop of ``numpy.py`` fused into
one pass.  Every
hyperparameter is passed already converted to the array's dtype (``dt(x)``), and the
loops contain no float literals, so float32 arrays are computed in float32 as in PyTorch
and in the C++ kernels.  Argument checks are those of the reference (``_checks.collect``).

Threads: arrays of at least ``PARALLEL_MIN_SIZE`` elements go through a ``parallel=True``
twin that cuts the array into one contiguous chunk per Numba thread (``prange``) and runs
the serial loop on each slice (views: nothing is allocated), so the arithmetic is written
once.  Both versions are compiled with ``cache=True``: a new process loads them from
Numba's cache (``__pycache__``) instead of compiling.

Numba's threads start only when a prange twin is about to run (``parallel.prange_threads``),
never at import, at ``fastopt.set_num_threads`` or on the native backend, with Numba's
"forksafe" threading layer unless the user chose one (``NUMBA_THREADING_LAYER``): TBB when
installed, else Numba's workqueue.  Not GNU OpenMP: measured, a later ``import torch``
binds to the system libgomp it loads (torch's foreach Adam 24x slower) and a forked child
is killed.  Workqueue is not thread-safe, so a prange call holds ``parallel.PRANGE_LOCK``
and a caller that finds it busy runs the serial loop.  See docs/threads.md.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .. import parallel as _parallel
from .._contract import slots
from ._checks import collect, is_half

# ---------------------------------------------------------------- half precision
# The loops read p[i] and g[i] through ``_ld`` (exact widening to the arithmetic type) and
# write p[i] through ``_st`` (one rounding to nearest even): the identity for float32 and
# float64 arrays; for half precision (Numba has no bfloat16, and its float16 is not enough)
# the arrays arrive as their bits and convert with the integer code of the C++ kernels
# (``load``/``store`` in cpp/include/fastopt/kernels.hpp): bfloat16 as uint16, float16 as
# int16.


@intrinsic
def _as_f32(typingctx, u):
    """The float32 whose bits are the uint32 ``u``."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@intrinsic
def _as_u32(typingctx, f):
    """The bits of the float32 ``f``, as a uint32."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


def _ld(x):  # pragma: no cover - replaced by the overload in compiled code
    raise NotImplementedError


def _st(p, i, x):  # pragma: no cover - replaced by the overload in compiled code
    raise NotImplementedError


@njit
def _bf16_load(x):
    return _as_f32(np.uint32(x) << np.uint32(16))


@njit
def _f16_load(x):
    h = np.uint32(np.uint16(x))
    em = h & np.uint32(0x7FFF)
    shifted = em << np.uint32(13)
    if em >= np.uint32(0x7C00):
        r = shifted | np.uint32(0x7F800000)
    else:
        r = _as_u32(_as_f32(shifted) * np.float32(5.192296858534828e33))  # 2**112
    return _as_f32(r | ((h & np.uint32(0x8000)) << np.uint32(16)))


@njit
def _bf16_store(x):
    u = _as_u32(np.float32(x))
    if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.uint16(((u >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0))
    lsb = (u >> np.uint32(16)) & np.uint32(1)
    return np.uint16((u + np.uint32(0x7FFF) + lsb) >> np.uint32(16))


@njit
def _f16_store(x):
    full = _as_u32(np.float32(x))
    sign = full & np.uint32(0x80000000)
    u = full ^ sign
    if u >= np.uint32(0x47800000):
        o = np.uint32(0x7C00)
        if u > np.uint32(0x7F800000):  # NaN: sign and top payload bits kept, as NumPy
            o = o | ((u >> np.uint32(13)) & np.uint32(0x3FF))
            if o == np.uint32(0x7C00):
                o = np.uint32(0x7C01)
    elif u < np.uint32(0x38800000):
        o = _as_u32(_as_f32(u) + np.float32(0.5)) - np.uint32(0x3F000000)
    else:
        lsb = (u >> np.uint32(13)) & np.uint32(1)
        o = (u + np.uint32(0xC8000FFF) + lsb) >> np.uint32(13)
    return np.int16(np.uint16(o | (sign >> np.uint32(16))))


@overload(_ld)
def _ld_impl(x):
    if x == types.uint16:
        return lambda x: _bf16_load(x)
    if x == types.int16:
        return lambda x: _f16_load(x)
    return lambda x: x


@overload(_st)
def _st_impl(p, i, x):
    if p.dtype == types.uint16:

        def store_bf16(p, i, x):
            p[i] = _bf16_store(x)

        return store_bf16
    if p.dtype == types.int16:

        def store_f16(p, i, x):
            p[i] = _f16_store(x)

        return store_f16

    def store(p, i, x):
        p[i] = x

    return store


@njit(cache=True, nogil=True, error_model="numpy")
def _sgd(p, g, buf, lr, momentum, one_minus_damp, wd, sign, use_wd, use_mom, nesterov, first):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        if use_mom:
            if first:
                b = gi
            else:
                b = momentum * buf[i] + one_minus_damp * gi
            buf[i] = b
            if nesterov:
                gi = gi + momentum * b
            else:
                gi = b
        _st(p, i, _ld(p[i]) - lr * gi)


@njit(cache=True, nogil=True, error_model="numpy")
def _adagrad(p, g, s, clr, wd, eps, sign, use_wd):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        si = s[i] + gi * gi
        s[i] = si
        _st(p, i, _ld(p[i]) - clr * gi / (np.sqrt(si) + eps))


@njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop(
    p,
    g,
    sq,
    ga,
    buf,
    lr,
    alpha,
    one_minus_alpha,
    eps,
    wd,
    momentum,
    sign,
    use_wd,
    centered,
    use_mom,
):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        si = alpha * sq[i] + one_minus_alpha * gi * gi
        sq[i] = si
        if centered:
            a = ga[i] + one_minus_alpha * (gi - ga[i])
            ga[i] = a
            avg = np.sqrt(si - a * a) + eps
        else:
            avg = np.sqrt(si) + eps
        if use_mom:
            b = momentum * buf[i] + gi / avg
            buf[i] = b
            _st(p, i, _ld(p[i]) - lr * b)
        else:
            _st(p, i, _ld(p[i]) - lr * gi / avg)


@njit(cache=True, nogil=True, error_model="numpy")
def _adam(
    p,
    g,
    m,
    v,
    vmax,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    inv_bc2_sqrt,
    sign,
    use_wd,
    decoupled,
    amsgrad,
):
    neg = sign < 0  # -g, as the reference and the C++ Adam (a NaN's sign flips too)
    for i in range(p.size):
        gi = -_ld(g[i]) if neg else _ld(g[i])
        pi = _ld(p[i])
        if use_wd:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        vv = vi
        if amsgrad:
            if vmax[i] > vi:
                vv = vmax[i]
            vmax[i] = vv
        denom = np.sqrt(vv) * inv_bc2_sqrt + eps
        _st(p, i, pi - step_size * mi / denom)


@njit(cache=True, nogil=True, error_model="numpy")
def _adamax(p, g, m, u, one_minus_beta1, beta2, eps, wd, step_size, sign, use_wd):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        a = beta2 * u[i]
        b = abs(gi) + eps
        # max propagating NaN from either side, as np.maximum / torch.maximum
        ui = a if (a != a) | (a > b) else b
        m[i] = mi
        u[i] = ui
        _st(p, i, _ld(p[i]) - step_size * mi / ui)


@njit(cache=True, nogil=True, error_model="numpy")
def _nadam(
    p,
    g,
    m,
    v,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    bias_correction2,
    grad_coef,
    avg_coef,
    sign,
    use_wd,
    decoupled,
):
    neg = sign < 0  # -g, as the reference and the C++ Adam (a NaN's sign flips too)
    for i in range(p.size):
        gi = -_ld(g[i]) if neg else _ld(g[i])
        pi = _ld(p[i])
        if use_wd:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        denom = np.sqrt(vi / bias_correction2) + eps
        pi = pi + grad_coef * gi / denom
        _st(p, i, pi + avg_coef * mi / denom)


@njit(cache=True, nogil=True, error_model="numpy")
def _radam(
    p,
    g,
    m,
    v,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    sign,
    use_wd,
    decoupled,
    rectify,
):
    neg = sign < 0  # -g, as the reference and the C++ Adam (a NaN's sign flips too)
    for i in range(p.size):
        gi = -_ld(g[i]) if neg else _ld(g[i])
        pi = _ld(p[i])
        if use_wd:
            if decoupled:
                pi = pi * decay
            else:
                gi = gi + wd * pi
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        if rectify:
            _st(p, i, pi - step_size * mi / (np.sqrt(vi) + eps))
        else:
            _st(p, i, pi - step_size * mi)


@njit(cache=True, nogil=True, error_model="numpy")
def _adadelta(p, g, v, u, lr, rho, one_minus_rho, eps, wd, sign, use_wd):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        vi = rho * v[i] + one_minus_rho * gi * gi
        v[i] = vi
        delta = np.sqrt(u[i] + eps) / np.sqrt(vi + eps) * gi
        u[i] = rho * u[i] + one_minus_rho * delta * delta
        _st(p, i, _ld(p[i]) - lr * delta)


@njit(cache=True, nogil=True, error_model="numpy")
def _rprop(p, g, prev, ss, lr, etaminus, etaplus, smin, smax, sign, first):
    one = sign * sign  # 1 and 0 in the arrays' dtype (no float literal)
    zero = sign - sign
    for i in range(p.size):
        gi = sign * _ld(g[i])
        prod = gi * prev[i]
        # torch.sign (0 for NaN), then torch's replacements, in its order
        f = zero
        if prod > zero:
            f = one
        if prod < zero:
            f = -one
        if f > zero:
            f = etaplus
        if f < zero:
            f = etaminus
        if f == zero:
            f = one
        s = (lr if first else ss[i]) * f
        if s < smin:
            s = smin
        if s > smax:
            s = smax
        if f == etaminus:
            gi = zero
        sg = zero
        if gi > zero:
            sg = one
        if gi < zero:
            sg = -one
        ss[i] = s
        prev[i] = gi
        _st(p, i, _ld(p[i]) - sg * s)


@njit(cache=True, nogil=True, error_model="numpy")
def _asgd(p, g, ax, eta, decay, mu, wd, sign, use_wd, average):
    for i in range(p.size):
        gi = sign * _ld(g[i])
        if use_wd:
            gi = gi + wd * _ld(p[i])
        pi = _ld(p[i]) * decay
        pi = pi - eta * gi
        _st(p, i, pi)
        if average:
            ax[i] = ax[i] + (pi - ax[i]) * mu
        else:
            ax[i] = pi


# From this many elements on, the prange twin runs.  Measured on the idle 2-core EPYC (Adam,
# float32, one step): 1e5 elements 52.7 us serial vs 40.6 us prange; 1e6: 338 vs 184 us.
# Numba's pool splits statically, so on a loaded machine one busy core stalls the step;
# set_num_threads(1) gives the serial loop everywhere.
PARALLEL_MIN_SIZE = 1 << 16


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _sgd_par(
    p, g, buf, lr, momentum, one_minus_damp, wd, sign, use_wd, use_mom, nesterov, first, nchunks
):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        b = buf[lo:hi] if use_mom else buf
        _sgd(
            p[lo:hi],
            g[lo:hi],
            b,
            lr,
            momentum,
            one_minus_damp,
            wd,
            sign,
            use_wd,
            use_mom,
            nesterov,
            first,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _adagrad_par(p, g, s, clr, wd, eps, sign, use_wd, nchunks):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _adagrad(p[lo:hi], g[lo:hi], s[lo:hi], clr, wd, eps, sign, use_wd)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _rmsprop_par(
    p,
    g,
    sq,
    ga,
    buf,
    lr,
    alpha,
    one_minus_alpha,
    eps,
    wd,
    momentum,
    sign,
    use_wd,
    centered,
    use_mom,
    nchunks,
):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        a = ga[lo:hi] if centered else ga
        b = buf[lo:hi] if use_mom else buf
        _rmsprop(
            p[lo:hi],
            g[lo:hi],
            sq[lo:hi],
            a,
            b,
            lr,
            alpha,
            one_minus_alpha,
            eps,
            wd,
            momentum,
            sign,
            use_wd,
            centered,
            use_mom,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _adam_par(
    p,
    g,
    m,
    v,
    vmax,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    inv_bc2_sqrt,
    sign,
    use_wd,
    decoupled,
    amsgrad,
    nchunks,
):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        vm = vmax[lo:hi] if amsgrad else vmax
        _adam(
            p[lo:hi],
            g[lo:hi],
            m[lo:hi],
            v[lo:hi],
            vm,
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            eps,
            wd,
            decay,
            step_size,
            inv_bc2_sqrt,
            sign,
            use_wd,
            decoupled,
            amsgrad,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _adamax_par(p, g, m, u, one_minus_beta1, beta2, eps, wd, step_size, sign, use_wd, nchunks):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _adamax(
            p[lo:hi],
            g[lo:hi],
            m[lo:hi],
            u[lo:hi],
            one_minus_beta1,
            beta2,
            eps,
            wd,
            step_size,
            sign,
            use_wd,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _nadam_par(
    p,
    g,
    m,
    v,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    bias_correction2,
    grad_coef,
    avg_coef,
    sign,
    use_wd,
    decoupled,
    nchunks,
):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _nadam(
            p[lo:hi],
            g[lo:hi],
            m[lo:hi],
            v[lo:hi],
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            eps,
            wd,
            decay,
            bias_correction2,
            grad_coef,
            avg_coef,
            sign,
            use_wd,
            decoupled,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _radam_par(
    p,
    g,
    m,
    v,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    sign,
    use_wd,
    decoupled,
    rectify,
    nchunks,
):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _radam(
            p[lo:hi],
            g[lo:hi],
            m[lo:hi],
            v[lo:hi],
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            eps,
            wd,
            decay,
            step_size,
            sign,
            use_wd,
            decoupled,
            rectify,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _adadelta_par(p, g, v, u, lr, rho, one_minus_rho, eps, wd, sign, use_wd, nchunks):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _adadelta(
            p[lo:hi], g[lo:hi], v[lo:hi], u[lo:hi], lr, rho, one_minus_rho, eps, wd, sign, use_wd
        )


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lerp(a, b, w, one_minus_w, small):
    # torch.lerp with a scalar weight (numpy.py's _lerp; the branch decided by the caller)
    if small:
        return a + w * (b - a)
    return b - (b - a) * one_minus_w


@njit(cache=True, nogil=True, error_model="numpy")
def _adafactor_update(u, g, v, w, one_minus_w, small, eps, one, sign, lerp):
    for i in range(u.size):
        gi = sign * _ld(g[i])
        vi = v[i]
        if lerp:
            vi = _lerp(vi, gi * gi, w, one_minus_w, small)
            v[i] = vi
        c = eps if vi < eps else vi
        _st(u, i, one / np.sqrt(c) * gi)


@njit(cache=True, nogil=True, error_model="numpy")
def _muon_update(u, g, b, w, one_minus_w, small, m, one_minus_m, small_m, nesterov):
    for i in range(u.size):
        gi = _ld(g[i])
        bi = _lerp(b[i], gi, w, one_minus_w, small)
        b[i] = bi
        if nesterov:
            _st(u, i, _lerp(gi, bi, m, one_minus_m, small_m))
        else:
            _st(u, i, bi)


@njit(cache=True, nogil=True, error_model="numpy")
def _decay_add(p, u, decay, step_size, use_wd):
    for i in range(p.size):
        pi = _ld(p[i])
        if use_wd:
            pi = pi * decay
        _st(p, i, pi - step_size * _ld(u[i]))


def _lerp_args(w, dt):
    """The weight, ``1 - weight`` and the branch of ``_lerp``, in dtype ``dt``."""
    w = dt(w)
    return w, dt(1) - w, bool(abs(w) < 0.5)


def _flats(row):
    return [a.reshape(-1) for a in row]


def _run_adafactor_update(rows, *, weight, eps, lerp, maximize):
    for row in rows:
        dt = _math(row[0])
        sign = dt(-1 if maximize else 1)
        lerp_args = _lerp_args(weight, dt)
        _adafactor_update(*_flats(row), *lerp_args, dt(eps), dt(1), sign, bool(lerp))


def _run_muon_update(rows, *, weight, momentum, nesterov):
    for row in rows:
        dt = _math(row[0])
        lerps = (*_lerp_args(weight, dt), *_lerp_args(momentum, dt))
        _muon_update(*_flats(row), *lerps, bool(nesterov))


def _run_decay_add(rows, *, wd, decay, step_size):
    for p, u in rows:
        dt = _math(p)
        _decay_add(p.reshape(-1), u.reshape(-1), dt(decay), dt(step_size), wd != 0)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _rprop_par(p, g, prev, ss, lr, etaminus, etaplus, smin, smax, sign, first, nchunks):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _rprop(
            p[lo:hi],
            g[lo:hi],
            prev[lo:hi],
            ss[lo:hi],
            lr,
            etaminus,
            etaplus,
            smin,
            smax,
            sign,
            first,
        )


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _asgd_par(p, g, ax, eta, decay, mu, wd, sign, use_wd, average, nchunks):
    n = p.size
    for c in prange(nchunks):
        lo = c * n // nchunks
        hi = (c + 1) * n // nchunks
        _asgd(p[lo:hi], g[lo:hi], ax[lo:hi], eta, decay, mu, wd, sign, use_wd, average)


def _pick(serial, parallel, size):
    """(kernel, extra args): the prange twin for large arrays when Numba has threads."""
    if size >= PARALLEL_MIN_SIZE:
        nt = _parallel.prange_threads()
        if nt > 1:
            return _locked(serial, parallel), (nt,)
    return serial, ()


def _locked(serial, parallel):
    """The prange twin under ``PRANGE_LOCK``, or the serial loop while another thread has it."""

    def call(*args):
        lock = _parallel.PRANGE_LOCK
        if not lock.acquire(blocking=False):
            return serial(*args[:-1])  # last argument: nchunks
        try:
            return parallel(*args)
        finally:
            lock.release()

    return call


def _flat(a, like):
    """1-D view of a contiguous array, or an empty placeholder of the right dtype for None."""
    if a is None:
        return np.empty(0, _math(like))
    return a.reshape(-1)


def _math(p):
    """The arithmetic (and state) type of a parameter as the loops get it: float32 for a
    half-precision one (passed as its bits, see ``_bits``)."""
    return np.float32 if p.dtype.itemsize == 2 else p.dtype.type


def _bits(row):
    """A row with a half-precision parameter and gradient passed as their bits: bfloat16 as
    uint16, float16 as int16 (the signedness tells ``_ld``/``_st`` which format it is)."""
    p = row[0]
    if not is_half(p.dtype):
        return row
    view = np.int16 if p.dtype.kind == "f" else np.uint16
    return [p.view(view), row[1].view(view), *row[2:]]


def _run_sgd(rows, *, lr, momentum, one_minus_damp, wd, nesterov, maximize, first=False):
    for p, g, buf in rows:
        dt = _math(p)
        use_mom = momentum != 0 and buf is not None
        fn, extra = _pick(_sgd, _sgd_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            _flat(buf, p),
            dt(lr),
            dt(momentum),
            dt(one_minus_damp),
            dt(wd),
            dt(-1 if maximize else 1),
            wd != 0,
            use_mom,
            bool(nesterov),
            bool(first),
            *extra,
        )


def _run_adagrad(rows, *, clr, wd, eps, maximize):
    for p, g, s in rows:
        dt = _math(p)
        fn, extra = _pick(_adagrad, _adagrad_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            s.reshape(-1),
            dt(clr),
            dt(wd),
            dt(eps),
            dt(-1 if maximize else 1),
            wd != 0,
            *extra,
        )


def _run_rmsprop(rows, *, lr, alpha, one_minus_alpha, eps, wd, momentum, centered, maximize):
    for p, g, sq, ga, buf in rows:
        dt = _math(p)
        fn, extra = _pick(_rmsprop, _rmsprop_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            sq.reshape(-1),
            _flat(ga, p),
            _flat(buf, p),
            dt(lr),
            dt(alpha),
            dt(one_minus_alpha),
            dt(eps),
            dt(wd),
            dt(momentum),
            dt(-1 if maximize else 1),
            wd != 0,
            bool(centered) and ga is not None,
            momentum > 0 and buf is not None,
            *extra,
        )


def _run_adam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    inv_bc2_sqrt,
    decoupled,
    amsgrad,
    maximize,
):
    for p, g, m, v, vmax in rows:
        dt = _math(p)
        fn, extra = _pick(_adam, _adam_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            _flat(vmax, p),
            dt(one_minus_beta1),
            dt(beta2),
            dt(one_minus_beta2),
            dt(eps),
            dt(wd),
            dt(decay),
            dt(step_size),
            dt(inv_bc2_sqrt),
            dt(-1 if maximize else 1),
            wd != 0,
            bool(decoupled),
            bool(amsgrad) and vmax is not None,
            *extra,
        )


def _run_adamax(rows, *, one_minus_beta1, beta2, eps, wd, step_size, maximize):
    for p, g, m, u in rows:
        dt = _math(p)
        fn, extra = _pick(_adamax, _adamax_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            m.reshape(-1),
            u.reshape(-1),
            dt(one_minus_beta1),
            dt(beta2),
            dt(eps),
            dt(wd),
            dt(step_size),
            dt(-1 if maximize else 1),
            wd != 0,
            *extra,
        )


def _run_nadam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    bias_correction2,
    grad_coef,
    avg_coef,
    decoupled,
    maximize,
):
    for p, g, m, v in rows:
        dt = _math(p)
        fn, extra = _pick(_nadam, _nadam_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            dt(one_minus_beta1),
            dt(beta2),
            dt(one_minus_beta2),
            dt(eps),
            dt(wd),
            dt(decay),
            dt(bias_correction2),
            dt(grad_coef),
            dt(avg_coef),
            dt(-1 if maximize else 1),
            wd != 0,
            bool(decoupled),
            *extra,
        )


def _run_radam(
    rows,
    *,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    wd,
    decay,
    step_size,
    rectify,
    decoupled,
    maximize,
):
    for p, g, m, v in rows:
        dt = _math(p)
        fn, extra = _pick(_radam, _radam_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            m.reshape(-1),
            v.reshape(-1),
            dt(one_minus_beta1),
            dt(beta2),
            dt(one_minus_beta2),
            dt(eps),
            dt(wd),
            dt(decay),
            dt(step_size),
            dt(-1 if maximize else 1),
            wd != 0,
            bool(decoupled),
            bool(rectify),
            *extra,
        )


def _run_adadelta(rows, *, lr, rho, one_minus_rho, eps, wd, maximize):
    for p, g, v, u in rows:
        dt = _math(p)
        fn, extra = _pick(_adadelta, _adadelta_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            v.reshape(-1),
            u.reshape(-1),
            dt(lr),
            dt(rho),
            dt(one_minus_rho),
            dt(eps),
            dt(wd),
            dt(-1 if maximize else 1),
            wd != 0,
            *extra,
        )


def _run_rprop(rows, *, lr, etaminus, etaplus, step_size_min, step_size_max, maximize, first):
    for p, g, prev, ss in rows:
        dt = _math(p)
        fn, extra = _pick(_rprop, _rprop_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            prev.reshape(-1),
            ss.reshape(-1),
            dt(lr),
            dt(etaminus),
            dt(etaplus),
            dt(step_size_min),
            dt(step_size_max),
            dt(-1 if maximize else 1),
            bool(first),
            *extra,
        )


def _run_asgd(rows, *, eta, decay, mu, average, wd, maximize):
    for p, g, ax in rows:
        dt = _math(p)
        fn, extra = _pick(_asgd, _asgd_par, p.size)
        fn(
            p.reshape(-1),
            g.reshape(-1),
            ax.reshape(-1),
            dt(eta),
            dt(decay),
            dt(mu),
            dt(wd),
            dt(-1 if maximize else 1),
            wd != 0,
            bool(average),
            *extra,
        )


_RUN = {
    "sgd": _run_sgd,
    "adagrad": _run_adagrad,
    "rmsprop": _run_rmsprop,
    "adam": _run_adam,
    "adamax": _run_adamax,
    "nadam": _run_nadam,
    "radam": _run_radam,
    "adadelta": _run_adadelta,
    "adafactor_update": _run_adafactor_update,
    "muon_update": _run_muon_update,
    "decay_add": _run_decay_add,
    "rprop": _run_rprop,
    "asgd": _run_asgd,
}


def step(kind, params, grads, state, scalars, names=None):
    """One multi-tensor update of optimizer ``kind`` (the backend interface of
    ``fastopt._contract``): the reference's checks, then the fused loops."""
    rows = collect(slots(kind, params, grads, state), names)  # checks kind and names too
    _RUN[kind]([_bits(r) for r in rows], **scalars)
