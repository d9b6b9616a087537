// fastopt's C++ API: PyTorch-exact optimizer steps on raw arrays, header-only, C++17.
//
//     #include <fastopt/fastopt.hpp>
//
//     std::vector<float> w(n), g(n), m(n), v(n);        // state starts at zero
//     fastopt::AdamOptions opt;                          // torch's defaults
//     opt.lr = 1e-2;
//     for (std::int64_t t = 1; t <= steps; ++t) {        // step is 1-based, as torch's
//       compute_gradient(w, g);
//       fastopt::adam(w.data(), g.data(), m.data(), v.data(), nullptr, n, t, opt);
//     }
//
// One call updates one array of n elements (and its state) in place, on the calling thread
// (no pool, no global state: different arrays may be stepped from different threads; the
// Python extension adds the multi-threaded, ISA-dispatched execution).  T is float or double
// (half-precision parameters are for the Python optimizers only);
// the results are bit-identical to fastopt.kernels (python/fastopt/kernels.py) and the
// Python optimizers given the same inputs, on any backend: the derived scalars (Adam's
// lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t), Adagrad's lr / (1 + (t - 1) lr_decay),
// 1 - dampening, 1 - alpha, 1 - lr * weight_decay, ...) are computed here in double, exactly
// as fastopt.kernels computes them, and cast to T once; the per-element loops are those of
// the compiled extension (fastopt/kernels.hpp, generic build).  The update rules are
// written out in the docstrings of python/fastopt/backends/numpy.py (the reference).
//
// Checks: every option is checked with the rules of fastopt.kernels (finite numbers;
// lr, momentum, weight_decay, eps, lr_decay, alpha >= 0; beta1, beta2 in [0, 1); Nesterov
// needs momentum > 0 and dampening == 0; step >= 1), and so are the pointers (param, grad
// and every state array the options need are non-null when n > 0; no array written may
// overlap another).  A failed check throws std::invalid_argument before anything is
// written.  State arrays the options do not use may be null and are never touched.
//
// Exactness needs no FMA contraction: a*b + c must round twice, as NumPy and PyTorch's CPU
// loops do.  GCC contracts by default (-ffp-contract=fast in GNU mode) and Clang within an
// expression (-ffp-contract=on), so code including this header must be compiled with
// -ffp-contract=off.  The CMake target fastopt::fastopt adds it to its consumers (with
// C++17); without CMake, add it yourself.  On GCC the header also turns contraction off for
// its own functions (#pragma GCC optimize; define FASTOPT_NO_PRAGMA_FP_CONTRACT to skip it),
// so that a GCC build that forgets the flag stays exact; the flag remains the contract.
// Speed: the loops vectorise when sqrt cannot set errno, so compile with -fno-math-errno
// too (as the Python extension and fastopt::c are); it changes no result.
// Compilers: GCC or Clang (the kernels use __builtin_sqrt and __restrict__).
//
// The C ABI for other languages is fastopt/fastopt.h (library fastopt::c).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

// Exact comparisons are intended (weight_decay != 0 is torch's rule), and the loops are
// written for the vectoriser, not for every warning a consumer may enable.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wfloat-equal"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#if defined(__GNUC__) && !defined(__clang__) && !defined(FASTOPT_NO_PRAGMA_FP_CONTRACT)
#define FASTOPT_PRAGMA_FP_CONTRACT_OFF 1
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#include "kernels.hpp"

namespace fastopt {

// ------------------------------------------------------------------ options (torch's names and
// defaults)
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// The state sum starts at torch's initial_accumulator_value (0 by default): the caller
// fills state_sum with it before the first step.
struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double eps = 1e-10;
  bool maximize = false;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};

// Adam; AdamW is decoupled_weight_decay = true (or AdamWOptions / adamw below).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;
};

// torch.optim.AdamW's defaults (weight_decay = 1e-2); adamw() runs Adam with decoupled decay.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

namespace detail {

template <class T>
struct identity {
  using type = T;
};
// Only the parameter's type is deduced, so that nullptr may be passed for unused state.
template <class T>
using same_t = typename identity<T>::type;

template <class T>
constexpr void check_type() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "fastopt updates float or double arrays");
}

// A value the compiler can neither constant-fold nor fuse with its neighbours: the derived
// scalars must be rounded exactly as Python rounds them (libm's pow, one rounding per
// operation), whatever the optimisation level.
inline double opaque(double x) {
  volatile double v = x;
  return v;
}

inline std::string repr(double v) {
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {  // the shortest form that reads back
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

inline void check_finite(const char* name, double v) {
  if (std::isnan(v)) fail(std::string(name) + " must be a number, got NaN; pass a finite value");
  if (std::isinf(v)) fail(std::string(name) + " must be finite, got " + repr(v));
}

inline void check_nonneg(const char* name, double v) {
  check_finite(name, v);
  if (v < 0.0) fail(std::string(name) + " must be >= 0.0, got " + repr(v));
}

inline void check_beta(const char* name, double v) {
  check_finite(name, v);
  if (!(v >= 0.0 && v < 1.0)) fail(std::string(name) + " must be in [0, 1), got " + repr(v));
}

inline void check_step(std::int64_t step) {
  if (step < 1)
    fail("step must be >= 1 (the 1-based number of this update, 1 for the first), got " +
         std::to_string(step));
}

// One array of the call: its pointer, whether the call writes it, and its role for messages.
struct Arr {
  const void* ptr;
  bool written;
  const char* role;
};

// Required arrays are non-null when n > 0; no written array overlaps another array.
template <class T, std::size_t K>
void check_arrays(const Arr (&a)[K], std::size_t n) {
  if (n == 0) return;
  if (n > SIZE_MAX / sizeof(T)) fail("n = " + std::to_string(n) + " elements is too large");
  const std::size_t bytes = n * sizeof(T);
  for (std::size_t i = 0; i < K; ++i) {
    if (a[i].ptr == nullptr) continue;
    const auto lo = reinterpret_cast<std::uintptr_t>(a[i].ptr);
    for (std::size_t j = i + 1; j < K; ++j) {
      if (a[j].ptr == nullptr || !(a[i].written || a[j].written)) continue;
      const auto lo2 = reinterpret_cast<std::uintptr_t>(a[j].ptr);
      if (lo < lo2 + bytes && lo2 < lo + bytes)
        fail(std::string(a[i].role) + " and " + a[j].role +
             " share memory; every parameter, gradient and state array must be a separate "
             "array");
    }
  }
}

inline void need(const void* p, std::size_t n, const char* what) {
  if (n > 0 && p == nullptr) fail(std::string(what) + " is null");
}

}  // namespace detail

// ------------------------------------------------------------------ SGD
// torch.optim.SGD.  momentum_buffer (n elements) is needed when momentum != 0 and may be
// null otherwise; on step 1 it is set to the gradient (torch's first step, no dampening).
template <class T>
void sgd(T* param, const detail::same_t<T>* grad, detail::same_t<T>* momentum_buffer, std::size_t n,
         std::int64_t step, const SGDOptions& options = SGDOptions()) {
  detail::check_type<T>();
  const SGDOptions& o = options;
  detail::check_step(step);
  detail::check_nonneg("lr", o.lr);
  detail::check_nonneg("momentum", o.momentum);
  detail::check_finite("dampening", o.dampening);
  detail::check_nonneg("weight_decay", o.weight_decay);
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    detail::fail("nesterov=True requires momentum > 0 and dampening == 0, got momentum=" +
                 detail::repr(o.momentum) + ", dampening=" + detail::repr(o.dampening));
  const bool use_buf = o.momentum != 0.0;
  detail::need(param, n, "param");
  detail::need(grad, n, "grad");
  if (use_buf && n > 0 && momentum_buffer == nullptr)
    detail::fail("momentum=" + detail::repr(o.momentum) +
                 " needs a momentum_buffer (n zeros); pass one or set momentum=0");
  T* buf = use_buf ? momentum_buffer : nullptr;
  detail::check_arrays<T>(
      {{param, true, "param"}, {grad, false, "grad"}, {buf, true, "momentum_buffer"}}, n);
  if (n == 0) return;
  const double one_minus_damp = 1.0 - o.dampening;
  generic::kernels::sgd<T>(param, grad, buf, n, T(o.lr), T(o.momentum), T(one_minus_damp),
                           T(o.weight_decay), o.weight_decay != 0.0, o.nesterov, o.maximize,
                           step == 1);
}

// ------------------------------------------------------------------ Adagrad
// torch.optim.Adagrad.  state_sum (n elements) starts at initial_accumulator_value.
template <class T>
void adagrad(T* param, const detail::same_t<T>* grad, detail::same_t<T>* state_sum, std::size_t n,
             std::int64_t step, const AdagradOptions& options = AdagradOptions()) {
  detail::check_type<T>();
  const AdagradOptions& o = options;
  detail::check_step(step);
  detail::check_nonneg("lr", o.lr);
  detail::check_nonneg("lr_decay", o.lr_decay);
  detail::check_nonneg("weight_decay", o.weight_decay);
  detail::check_nonneg("eps", o.eps);
  detail::need(param, n, "param");
  detail::need(grad, n, "grad");
  detail::need(state_sum, n, "state_sum");
  detail::check_arrays<T>(
      {{param, true, "param"}, {grad, false, "grad"}, {state_sum, true, "state_sum"}}, n);
  if (n == 0) return;
  // lr / (1 + (t - 1) * lr_decay), as fastopt.kernels.adagrad computes it in Python.
  const double decayed = detail::opaque(static_cast<double>(step - 1) * o.lr_decay);
  const double clr = o.lr / (1.0 + decayed);
  generic::kernels::adagrad<T>(param, grad, state_sum, n, T(clr), T(o.weight_decay),
                               o.weight_decay != 0.0, T(o.eps), o.maximize);
}

// ------------------------------------------------------------------ RMSprop
// torch.optim.RMSprop.  grad_avg is needed when centered, momentum_buffer when
// momentum > 0; either may be null otherwise.  RMSprop has no bias correction: step is
// only checked (>= 1), for uniformity.
template <class T>
void rmsprop(T* param, const detail::same_t<T>* grad, detail::same_t<T>* square_avg,
             detail::same_t<T>* grad_avg, detail::same_t<T>* momentum_buffer, std::size_t n,
             std::int64_t step, const RMSpropOptions& options = RMSpropOptions()) {
  detail::check_type<T>();
  const RMSpropOptions& o = options;
  detail::check_step(step);
  detail::check_nonneg("lr", o.lr);
  detail::check_nonneg("alpha", o.alpha);
  detail::check_nonneg("eps", o.eps);
  detail::check_nonneg("weight_decay", o.weight_decay);
  detail::check_nonneg("momentum", o.momentum);
  detail::need(param, n, "param");
  detail::need(grad, n, "grad");
  detail::need(square_avg, n, "square_avg");
  if (o.centered && n > 0 && grad_avg == nullptr)
    detail::fail("centered=True needs a grad_avg (n zeros)");
  const bool use_buf = o.momentum > 0.0;
  if (use_buf && n > 0 && momentum_buffer == nullptr)
    detail::fail("momentum=" + detail::repr(o.momentum) +
                 " needs a momentum_buffer (n zeros); pass one or set momentum=0");
  T* ga = o.centered ? grad_avg : nullptr;
  T* buf = use_buf ? momentum_buffer : nullptr;
  detail::check_arrays<T>({{param, true, "param"},
                           {grad, false, "grad"},
                           {square_avg, true, "square_avg"},
                           {ga, true, "grad_avg"},
                           {buf, true, "momentum_buffer"}},
                          n);
  if (n == 0) return;
  const double one_minus_alpha = 1.0 - o.alpha;
  generic::kernels::rmsprop<T>(param, grad, square_avg, ga, buf, n, T(o.lr), T(o.alpha),
                               T(one_minus_alpha), T(o.eps), T(o.weight_decay),
                               o.weight_decay != 0.0, T(o.momentum), o.centered, o.maximize);
}

// ------------------------------------------------------------------ Adam / AdamW
// torch.optim.Adam (torch.optim.AdamW with decoupled_weight_decay).  max_exp_avg_sq is
// needed when amsgrad and may be null otherwise.  The bias corrections 1 - beta^t are
// computed in double from the integer step.
template <class T>
void adam(T* param, const detail::same_t<T>* grad, detail::same_t<T>* exp_avg,
          detail::same_t<T>* exp_avg_sq, detail::same_t<T>* max_exp_avg_sq, std::size_t n,
          std::int64_t step, const AdamOptions& options = AdamOptions()) {
  detail::check_type<T>();
  const AdamOptions& o = options;
  detail::check_step(step);
  detail::check_nonneg("lr", o.lr);
  detail::check_beta("beta1", o.beta1);
  detail::check_beta("beta2", o.beta2);
  detail::check_nonneg("eps", o.eps);
  detail::check_nonneg("weight_decay", o.weight_decay);
  detail::need(param, n, "param");
  detail::need(grad, n, "grad");
  detail::need(exp_avg, n, "exp_avg");
  detail::need(exp_avg_sq, n, "exp_avg_sq");
  if (o.amsgrad && n > 0 && max_exp_avg_sq == nullptr)
    detail::fail("amsgrad=True needs a max_exp_avg_sq (n zeros)");
  T* vmax = o.amsgrad ? max_exp_avg_sq : nullptr;
  detail::check_arrays<T>({{param, true, "param"},
                           {grad, false, "grad"},
                           {exp_avg, true, "exp_avg"},
                           {exp_avg_sq, true, "exp_avg_sq"},
                           {vmax, true, "max_exp_avg_sq"}},
                          n);
  if (n == 0) return;
  // fastopt.kernels.adam_scalars: beta ** t and bc2 ** 0.5 are libm's pow in Python too.
  const double t = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(detail::opaque(o.beta1), t);
  const double bc2 = 1.0 - std::pow(detail::opaque(o.beta2), t);
  const double step_size = o.lr / bc1;
  const double bc2_sqrt = std::pow(detail::opaque(bc2), 0.5);
  const double inv_bc2_sqrt = 1.0 / bc2_sqrt;
  const double decay = 1.0 - detail::opaque(o.lr * o.weight_decay);
  generic::kernels::adam<T>(param, grad, exp_avg, exp_avg_sq, vmax, n, T(1.0 - o.beta1), T(o.beta2),
                            T(1.0 - o.beta2), T(o.eps), T(o.weight_decay), o.weight_decay != 0.0,
                            T(decay), T(step_size), T(inv_bc2_sqrt), o.decoupled_weight_decay,
                            o.amsgrad, o.maximize);
}

inline AdamOptions to_adam(const AdamWOptions& w) {
  AdamOptions o;
  o.lr = w.lr;
  o.beta1 = w.beta1;
  o.beta2 = w.beta2;
  o.eps = w.eps;
  o.weight_decay = w.weight_decay;
  o.amsgrad = w.amsgrad;
  o.maximize = w.maximize;
  o.decoupled_weight_decay = true;
  return o;
}

// torch.optim.AdamW: adam() with decoupled weight decay p *= 1 - lr * weight_decay.
template <class T>
void adamw(T* param, const detail::same_t<T>* grad, detail::same_t<T>* exp_avg,
           detail::same_t<T>* exp_avg_sq, detail::same_t<T>* max_exp_avg_sq, std::size_t n,
           std::int64_t step, const AdamWOptions& options = AdamWOptions()) {
  adam<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, step, to_adam(options));
}

}  // namespace fastopt

#if defined(FASTOPT_PRAGMA_FP_CONTRACT_OFF)
#pragma GCC pop_options
#undef FASTOPT_PRAGMA_FP_CONTRACT_OFF
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
