// fastopt update kernels: plain C++ over raw pointers and a length.
//
// One fused pass over memory per step, no temporaries.  The formulas are PyTorch's
// (torch.optim), written out in the docstrings of python/fastopt/backends/numpy.py, which is
// the readable reference these loops must match.  fastopt/fastopt.hpp is the public C++ API
// over these loops (it computes the derived scalars and checks the options).
//
// Conventions
//   * Every hyperparameter arrives already converted to the array's type T.  Derived
//     scalars (1 - beta, 1 - dampening, bias corrections, step sizes) are computed by the
//     caller in double and cast to T once, as PyTorch does with its Python scalars.
//   * Loop-invariant options (weight decay on/off, momentum, nesterov, amsgrad, ...) are
//     template parameters, so that each loop the compiler vectorises has no branch.
//   * `use_wd` says whether weight decay applies, decided by the caller on the double value
//     (`weight_decay != 0`, as PyTorch), not on its float32 rounding.
//   * `maximize` is a sign (+1 or -1) applied to the gradient; multiplying by +-1 is exact.
//
// ISA builds: this header is compiled once per instruction set (cpp/src/kernels_generic.cpp,
// kernels_avx2.cpp, kernels_avx512.cpp, each with its own -m flags) and every copy lives in
// its own namespace fastopt::<FASTOPT_ISA_NS>, so that the linker never merges an AVX-512
// instantiation into the generic path.  For the same reason the header uses no standard
// library templates: only builtins, which are always inlined.  The loops are written for
// the auto-vectoriser (restrict pointers, no branches, -O3 -fno-math-errno so that sqrt and
// division vectorise); GCC emits unaligned vector loads and a scalar remainder loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#ifndef FASTOPT_ISA_NS
#define FASTOPT_ISA_NS generic
#endif

#if defined(__GNUC__)
#define FASTOPT_RESTRICT __restrict__
#else
#define FASTOPT_RESTRICT
#endif

namespace fastopt {
namespace FASTOPT_ISA_NS {
namespace kernels {

inline float fsqrt(float x) { return __builtin_sqrtf(x); }
inline double fsqrt(double x) { return __builtin_sqrt(x); }

// ---------------------------------------------------------------- SGD
template <class T, bool WD, bool MOM, bool NESTEROV, bool FIRST>
inline void sgd_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT buf,
                     std::size_t n, T lr, T momentum, T one_minus_damp, T wd, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    if (MOM) {
      T b;
      if (FIRST)
        b = gi;  // the first step copies the gradient: no dampening
      else
        b = momentum * buf[i] + one_minus_damp * gi;
      buf[i] = b;
      gi = NESTEROV ? gi + momentum * b : b;
    }
    p[i] = p[i] - lr * gi;
  }
}

template <class T>
void sgd(T* p, const T* g, T* buf, std::size_t n, T lr, T momentum, T one_minus_damp, T wd,
         bool use_wd, bool nesterov, bool maximize, bool first) {
  const T s = maximize ? T(-1) : T(1);
  // The caller passes no buffer when momentum == 0 (decided in double: a momentum that
  // rounds to 0 in float32 still uses its buffer, as the NumPy reference does).
  if (buf == nullptr) {
    if (use_wd)
      sgd_impl<T, true, false, false, false>(p, g, buf, n, lr, momentum, one_minus_damp, wd, s);
    else
      sgd_impl<T, false, false, false, false>(p, g, buf, n, lr, momentum, one_minus_damp, wd, s);
    return;
  }
#define FASTOPT_SGD(W, N, F) \
  sgd_impl<T, W, true, N, F>(p, g, buf, n, lr, momentum, one_minus_damp, wd, s)
  if (use_wd) {
    if (nesterov) {
      if (first)
        FASTOPT_SGD(true, true, true);
      else
        FASTOPT_SGD(true, true, false);
    } else {
      if (first)
        FASTOPT_SGD(true, false, true);
      else
        FASTOPT_SGD(true, false, false);
    }
  } else {
    if (nesterov) {
      if (first)
        FASTOPT_SGD(false, true, true);
      else
        FASTOPT_SGD(false, true, false);
    } else {
      if (first)
        FASTOPT_SGD(false, false, true);
      else
        FASTOPT_SGD(false, false, false);
    }
  }
#undef FASTOPT_SGD
}

// ---------------------------------------------------------------- Adagrad
// clr = lr / (1 + (t - 1) * lr_decay) is computed by the caller in double.
template <class T, bool WD>
inline void adagrad_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g,
                         T* FASTOPT_RESTRICT sum, std::size_t n, T clr, T wd, T eps, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    const T s = sum[i] + gi * gi;
    sum[i] = s;
    p[i] = p[i] - clr * gi / (fsqrt(s) + eps);
  }
}

template <class T>
void adagrad(T* p, const T* g, T* sum, std::size_t n, T clr, T wd, bool use_wd, T eps,
             bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  if (use_wd)
    adagrad_impl<T, true>(p, g, sum, n, clr, wd, eps, s);
  else
    adagrad_impl<T, false>(p, g, sum, n, clr, wd, eps, s);
}

// ---------------------------------------------------------------- RMSprop
template <class T, bool WD, bool CENTERED, bool MOM>
inline void rmsprop_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT sq,
                         T* FASTOPT_RESTRICT ga, T* FASTOPT_RESTRICT buf, std::size_t n, T lr,
                         T alpha, T one_minus_alpha, T eps, T wd, T momentum, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    const T s = alpha * sq[i] + one_minus_alpha * gi * gi;
    sq[i] = s;
    T avg;
    if (CENTERED) {
      const T a = ga[i] + one_minus_alpha * (gi - ga[i]);
      ga[i] = a;
      avg = fsqrt(s - a * a) + eps;
    } else {
      avg = fsqrt(s) + eps;
    }
    if (MOM) {
      const T b = momentum * buf[i] + gi / avg;
      buf[i] = b;
      p[i] = p[i] - lr * b;
    } else {
      p[i] = p[i] - lr * gi / avg;
    }
  }
}

template <class T>
void rmsprop(T* p, const T* g, T* sq, T* ga, T* buf, std::size_t n, T lr, T alpha,
             T one_minus_alpha, T eps, T wd, bool use_wd, T momentum, bool centered,
             bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  const bool mom = buf != nullptr;  // the caller passes a buffer iff momentum > 0 (in double)
  const bool cen = centered && ga != nullptr;
#define FASTOPT_RMS(W, C, M) \
  rmsprop_impl<T, W, C, M>(p, g, sq, ga, buf, n, lr, alpha, one_minus_alpha, eps, wd, momentum, s)
  if (use_wd) {
    if (cen) {
      if (mom)
        FASTOPT_RMS(true, true, true);
      else
        FASTOPT_RMS(true, true, false);
    } else {
      if (mom)
        FASTOPT_RMS(true, false, true);
      else
        FASTOPT_RMS(true, false, false);
    }
  } else {
    if (cen) {
      if (mom)
        FASTOPT_RMS(false, true, true);
      else
        FASTOPT_RMS(false, true, false);
    } else {
      if (mom)
        FASTOPT_RMS(false, false, true);
      else
        FASTOPT_RMS(false, false, false);
    }
  }
#undef FASTOPT_RMS
}

// ---------------------------------------------------------------- Adam / AdamW
// step_size = lr / (1 - beta1**t) and inv_bc2_sqrt = 1 / sqrt(1 - beta2**t) are computed by the
// caller in double from the integer step t.  decay = 1 - lr * wd (AdamW) likewise.
template <class T, bool WD, bool DECOUPLED, bool AMSGRAD>
inline void adam_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                      T* FASTOPT_RESTRICT v, T* FASTOPT_RESTRICT vmax, std::size_t n,
                      T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T wd, T decay,
                      T step_size, T inv_bc2_sqrt, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    T pi = p[i];
    if (WD) {
      if (DECOUPLED)
        pi = pi * decay;
      else
        gi = gi + wd * pi;
    }
    const T mi = m[i] + one_minus_beta1 * (gi - m[i]);
    const T vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T vv = vi;
    if (AMSGRAD) {
      vv = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vv;
    }
    const T denom = fsqrt(vv) * inv_bc2_sqrt + eps;
    p[i] = pi - step_size * mi / denom;
  }
}

template <class T>
void adam(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, T one_minus_beta1, T beta2,
          T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T step_size, T inv_bc2_sqrt,
          bool decoupled, bool amsgrad, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  const bool ams = amsgrad && vmax != nullptr;
#define FASTOPT_ADAM(W, D, A)                                                                  \
  adam_impl<T, W, D, A>(p, g, m, v, vmax, n, one_minus_beta1, beta2, one_minus_beta2, eps, wd, \
                        decay, step_size, inv_bc2_sqrt, s)
  if (use_wd) {
    if (decoupled) {
      if (ams)
        FASTOPT_ADAM(true, true, true);
      else
        FASTOPT_ADAM(true, true, false);
    } else {
      if (ams)
        FASTOPT_ADAM(true, false, true);
      else
        FASTOPT_ADAM(true, false, false);
    }
  } else {
    if (ams)
      FASTOPT_ADAM(false, false, true);
    else
      FASTOPT_ADAM(false, false, false);
  }
#undef FASTOPT_ADAM
}

// ---------------------------------------------------------------- Adamax
// step_size = lr / (1 - beta1**t) is computed by the caller in double.  The maximum
// propagates a NaN from either side, as torch.maximum and np.maximum.
template <class T, bool WD>
inline void adamax_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                        T* FASTOPT_RESTRICT u, std::size_t n, T one_minus_beta1, T beta2, T eps,
                        T wd, T step_size, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    const T mi = m[i] + one_minus_beta1 * (gi - m[i]);
    const T a = beta2 * u[i];
    const T b = __builtin_fabs(gi) + eps;
    const T ui = ((a != a) | (a > b)) ? a : b;
    m[i] = mi;
    u[i] = ui;
    p[i] = p[i] - step_size * mi / ui;
  }
}

template <class T>
void adamax(T* p, const T* g, T* m, T* u, std::size_t n, T one_minus_beta1, T beta2, T eps, T wd,
            bool use_wd, T step_size, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  if (use_wd)
    adamax_impl<T, true>(p, g, m, u, n, one_minus_beta1, beta2, eps, wd, step_size, s);
  else
    adamax_impl<T, false>(p, g, m, u, n, one_minus_beta1, beta2, eps, wd, step_size, s);
}

// ---------------------------------------------------------------- NAdam
// bias_correction2 = 1 - beta2**t, grad_coef = -lr (1 - mu_t) / (1 - prod mu) and
// avg_coef = -lr mu_{t+1} / (1 - mu_{t+1} prod mu) are computed by the caller in double (the
// running product as torch keeps it).  Two additions to p, in torch's order.
template <class T, bool WD, bool DECOUPLED>
inline void nadam_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                       T* FASTOPT_RESTRICT v, std::size_t n, T one_minus_beta1, T beta2,
                       T one_minus_beta2, T eps, T wd, T decay, T bias_correction2, T grad_coef,
                       T avg_coef, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    T pi = p[i];
    if (WD) {
      if (DECOUPLED)
        pi = pi * decay;
      else
        gi = gi + wd * pi;
    }
    const T mi = m[i] + one_minus_beta1 * (gi - m[i]);
    const T vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T denom = fsqrt(vi / bias_correction2) + eps;
    pi = pi + grad_coef * gi / denom;
    p[i] = pi + avg_coef * mi / denom;
  }
}

template <class T>
void nadam(T* p, const T* g, T* m, T* v, std::size_t n, T one_minus_beta1, T beta2,
           T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T bias_correction2, T grad_coef,
           T avg_coef, bool decoupled, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
#define FASTOPT_NADAM(W, D)                                                                   \
  nadam_impl<T, W, D>(p, g, m, v, n, one_minus_beta1, beta2, one_minus_beta2, eps, wd, decay, \
                      bias_correction2, grad_coef, avg_coef, s)
  if (use_wd) {
    if (decoupled)
      FASTOPT_NADAM(true, true);
    else
      FASTOPT_NADAM(true, false);
  } else {
    FASTOPT_NADAM(false, false);
  }
#undef FASTOPT_NADAM
}

// ---------------------------------------------------------------- RAdam
// step_size folds lr, the bias corrections and the rectification term r_t (computed by the
// caller in double); `rectify` (rho_t > 5) is decided there too.
template <class T, bool WD, bool DECOUPLED, bool RECTIFY>
inline void radam_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT m,
                       T* FASTOPT_RESTRICT v, std::size_t n, T one_minus_beta1, T beta2,
                       T one_minus_beta2, T eps, T wd, T decay, T step_size, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    T pi = p[i];
    if (WD) {
      if (DECOUPLED)
        pi = pi * decay;
      else
        gi = gi + wd * pi;
    }
    const T mi = m[i] + one_minus_beta1 * (gi - m[i]);
    const T vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (RECTIFY)
      p[i] = pi - step_size * mi / (fsqrt(vi) + eps);
    else
      p[i] = pi - step_size * mi;
  }
}

template <class T>
void radam(T* p, const T* g, T* m, T* v, std::size_t n, T one_minus_beta1, T beta2,
           T one_minus_beta2, T eps, T wd, bool use_wd, T decay, T step_size, bool decoupled,
           bool rectify, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
#define FASTOPT_RADAM(W, D, R)                                                                   \
  radam_impl<T, W, D, R>(p, g, m, v, n, one_minus_beta1, beta2, one_minus_beta2, eps, wd, decay, \
                         step_size, s)
  if (use_wd) {
    if (decoupled) {
      if (rectify)
        FASTOPT_RADAM(true, true, true);
      else
        FASTOPT_RADAM(true, true, false);
    } else {
      if (rectify)
        FASTOPT_RADAM(true, false, true);
      else
        FASTOPT_RADAM(true, false, false);
    }
  } else {
    if (rectify)
      FASTOPT_RADAM(false, false, true);
    else
      FASTOPT_RADAM(false, false, false);
  }
#undef FASTOPT_RADAM
}

// ---------------------------------------------------------------- Adadelta
template <class T, bool WD>
inline void adadelta_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT v,
                          T* FASTOPT_RESTRICT u, std::size_t n, T lr, T rho, T one_minus_rho, T eps,
                          T wd, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    const T vi = rho * v[i] + one_minus_rho * gi * gi;
    v[i] = vi;
    const T delta = fsqrt(u[i] + eps) / fsqrt(vi + eps) * gi;
    u[i] = rho * u[i] + one_minus_rho * delta * delta;
    p[i] = p[i] - lr * delta;
  }
}

template <class T>
void adadelta(T* p, const T* g, T* v, T* u, std::size_t n, T lr, T rho, T one_minus_rho, T eps,
              T wd, bool use_wd, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  if (use_wd)
    adadelta_impl<T, true>(p, g, v, u, n, lr, rho, one_minus_rho, eps, wd, s);
  else
    adadelta_impl<T, false>(p, g, v, u, n, lr, rho, one_minus_rho, eps, wd, s);
}

// ---------------------------------------------------------------- Rprop
// torch.optim.Rprop in its order: the factor is sign(g * prev) (torch.sign: 0 for NaN)
// replaced by etaplus where > 0, then etaminus where < 0, then 1 where == 0; the gradient is
// zeroed where the factor equals etaminus.  FIRST: the step sizes start at lr (torch's
// state init), the stored ones are not read.  clamp propagates NaN, as torch.clamp.
template <class T>
inline T torch_sign(T x) {
  return T(x > T(0)) - T(x < T(0));
}

// torch's replacements applied to a sign s (1, -1 or 0), in T as the arrays hold them.
template <class T>
inline T rprop_factor(T s, T etaminus, T etaplus) {
  T f = s > T(0) ? etaplus : s;
  f = f < T(0) ? etaminus : f;
  return f == T(0) ? T(1) : f;
}

// The factor of each sign is computed once, before the loop, so that the loop selects
// among three values by comparing g * prev with 0: the same factors, but GCC no longer
// threads the correlated comparisons of torch_sign and the replacements into branches,
// which kept the FIRST loop from vectorising (generic and AVX2 builds).
template <class T, bool FIRST>
inline void rprop_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT prev,
                       T* FASTOPT_RESTRICT ss, std::size_t n, T lr, T etaminus, T etaplus, T smin,
                       T smax, T sign) {
  const T f_pos = rprop_factor(T(1), etaminus, etaplus);
  const T f_neg = rprop_factor(T(-1), etaminus, etaplus);
  const T f_zero = rprop_factor(T(0), etaminus, etaplus);
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    const T x = gi * prev[i];
    T f = x > T(0) ? f_pos : f_zero;  // NaN: torch.sign gives 0
    f = x < T(0) ? f_neg : f;
    T s = (FIRST ? lr : ss[i]) * f;
    s = s < smin ? smin : s;
    s = s > smax ? smax : s;
    gi = f == etaminus ? T(0) : gi;
    ss[i] = s;
    prev[i] = gi;
    p[i] = p[i] - torch_sign(gi) * s;
  }
}

template <class T>
void rprop(T* p, const T* g, T* prev, T* ss, std::size_t n, T lr, T etaminus, T etaplus, T smin,
           T smax, bool first, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  if (first)
    rprop_impl<T, true>(p, g, prev, ss, n, lr, etaminus, etaplus, smin, smax, s);
  else
    rprop_impl<T, false>(p, g, prev, ss, n, lr, etaminus, etaplus, smin, smax, s);
}

// ---------------------------------------------------------------- ASGD
// eta, mu (torch's float32 state), decay = 1 - lambd * eta and `average` (mu != 1) are
// computed by the caller in double.
template <class T, bool WD, bool AVERAGE>
inline void asgd_impl(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT ax,
                      std::size_t n, T eta, T decay, T mu, T wd, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (WD) gi = gi + wd * p[i];
    T pi = p[i] * decay;
    pi = pi - eta * gi;
    p[i] = pi;
    ax[i] = AVERAGE ? ax[i] + (pi - ax[i]) * mu : pi;
  }
}

template <class T>
void asgd(T* p, const T* g, T* ax, std::size_t n, T eta, T decay, T mu, T wd, bool use_wd,
          bool average, bool maximize) {
  const T s = maximize ? T(-1) : T(1);
#define FASTOPT_ASGD(W, A) asgd_impl<T, W, A>(p, g, ax, n, eta, decay, mu, wd, s)
  if (use_wd) {
    if (average)
      FASTOPT_ASGD(true, true);
    else
      FASTOPT_ASGD(true, false);
  } else {
    if (average)
      FASTOPT_ASGD(false, true);
    else
      FASTOPT_ASGD(false, false);
  }
#undef FASTOPT_ASGD
}

// ---------------------------------------------------------------- Adafactor, Muon
// The element-wise parts of the matrix optimizers (fastopt._contract.MATRIX_KERNELS); the
// reductions and the Newton-Schulz products run in NumPy, the same for every backend.
// torch.lerp with a scalar weight: a + w (b - a) when |w| < 0.5, else b - (b - a)(1 - w).
template <class T>
inline T lerp(T a, T b, T w, T one_minus_w, bool small) {
  return small ? a + w * (b - a) : b - (b - a) * one_minus_w;
}

template <class T>
inline bool lerp_small(T w) {
  return (w < T(0) ? -w : w) < T(0.5);
}

// u = g / sqrt(max(v, eps)) (g negated when maximize); v lerped towards g*g first when LERP.
template <class T, bool LERP>
inline void adafactor_update_impl(T* FASTOPT_RESTRICT u, const T* FASTOPT_RESTRICT g,
                                  T* FASTOPT_RESTRICT v, std::size_t n, T w, T one_minus_w,
                                  bool small, T eps, T sign) {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = sign * g[i];
    T vi = v[i];
    if (LERP) {
      vi = lerp(vi, gi * gi, w, one_minus_w, small);
      v[i] = vi;
    }
    const T c = vi < eps ? eps : vi;  // NaN stays NaN, as torch's clamp
    u[i] = T(1) / fsqrt(c) * gi;
  }
}

template <class T>
void adafactor_update(T* u, const T* g, T* v, std::size_t n, T w, T eps, bool lerp_v,
                      bool maximize) {
  const T s = maximize ? T(-1) : T(1);
  if (lerp_v)
    adafactor_update_impl<T, true>(u, g, v, n, w, T(1) - w, lerp_small(w), eps, s);
  else
    adafactor_update_impl<T, false>(u, g, v, n, w, T(1) - w, lerp_small(w), eps, s);
}

// b = lerp(b, g, w); u = lerp(g, b, momentum) when nesterov, else u = b.
template <class T>
void muon_update(T* FASTOPT_RESTRICT u, const T* FASTOPT_RESTRICT g, T* FASTOPT_RESTRICT b,
                 std::size_t n, T w, T momentum, bool nesterov) {
  const T omw = T(1) - w, omm = T(1) - momentum;
  const bool sw = lerp_small(w), sm = lerp_small(momentum);
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T bi = lerp(b[i], gi, w, omw, sw);
    b[i] = bi;
    u[i] = nesterov ? lerp(gi, bi, momentum, omm, sm) : bi;
  }
}

// p = p * decay (when use_wd), then p = p - step_size * u.
template <class T>
void decay_add(T* FASTOPT_RESTRICT p, const T* FASTOPT_RESTRICT u, std::size_t n, T decay,
               bool use_wd, T step_size) {
  for (std::size_t i = 0; i < n; ++i) {
    T pi = p[i];
    if (use_wd) pi = pi * decay;
    p[i] = pi - step_size * u[i];
  }
}

// ---------------------------------------------------------------- finiteness check
// True if every element is finite.  Compares the magnitude bits with the exponent mask
// (inf and NaN have an all-ones exponent); a max-reduction over unsigned integers
// vectorises without any floating-point reassociation.
template <class T>
bool all_finite(const T* FASTOPT_RESTRICT x, std::size_t n) {
  using U = typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type;
  const U abs_mask = sizeof(T) == 4 ? U(0x7fffffffu) : U(0x7fffffffffffffffull);
  const U inf_bits = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    U b;
    __builtin_memcpy(&b, x + i, sizeof(T));
    b &= abs_mask;
    worst = b > worst ? b : worst;
  }
  return worst < inf_bits;
}

// ---------------------------------------------------------------- bandwidth probe
// Moves the same bytes as an optimizer step (reads NR arrays, writes the first NW of them
// back) with no arithmetic beyond one add per array: the memory roofline of a step.
template <class T, int NR, int NW>
inline void probe_impl(T* const* arrays, std::size_t n) {
  T* a[NR];
  for (int k = 0; k < NR; ++k) a[k] = arrays[k];
#pragma GCC ivdep
  for (std::size_t i = 0; i < n; ++i) {
    T acc = a[0][i];
    for (int k = 1; k < NR; ++k) acc += a[k][i];
    for (int k = 0; k < NW; ++k) a[k][i] = acc;
  }
}

template <class T>
void probe(T* const* arrays, int nread, int nwrite, std::size_t n) {
  switch (nread * 8 + nwrite) {
    case 1 * 8 + 0:
      probe_impl<T, 1, 0>(arrays, n);
      return;
    case 1 * 8 + 1:
      probe_impl<T, 1, 1>(arrays, n);
      return;
    case 2 * 8 + 1:
      probe_impl<T, 2, 1>(arrays, n);
      return;
    case 3 * 8 + 2:
      probe_impl<T, 3, 2>(arrays, n);
      return;
    case 4 * 8 + 3:
      probe_impl<T, 4, 3>(arrays, n);
      return;
    case 5 * 8 + 4:
      probe_impl<T, 5, 4>(arrays, n);
      return;
    default:
      for (std::size_t i = 0; i < n; ++i) {
        T acc = T(0);
        for (int k = 0; k < nread; ++k) acc += arrays[k][i];
        for (int k = 0; k < nwrite; ++k) arrays[k][i] = acc;
      }
  }
}

}  // namespace kernels
}  // namespace FASTOPT_ISA_NS
}  // namespace fastopt
