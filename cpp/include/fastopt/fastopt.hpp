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
// Optimizers: sgd, adagrad, rmsprop, adam (and adamw), adamax, nadam, radam, adadelta, rprop,
// asgd, each torch.optim's class of that name; their options and state arrays are listed once in
// fastopt/optimizers.h, from which this header and the C ABI are generated (the signatures
// are spelled out above the step functions below; docs/embedding.md).
//
// One call updates one array of n elements (and its state) in place, on the calling thread
// (no pool, no global state: different arrays may be stepped from different threads; the
// Python extension adds the multi-threaded, ISA-dispatched execution).  T is float or double
// (half-precision parameters are for the Python optimizers only);
// the results are bit-identical to fastopt.kernels (python/fastopt/kernels.py) and the
// Python optimizers given the same inputs, on any backend: the derived scalars (Adam's
// lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t), Adagrad's lr / (1 + (t - 1) lr_decay),
// RAdam's rectification, NAdam's momentum coefficients and their float32 running product,
// ASGD's float32 eta and mu, 1 - dampening, 1 - alpha, 1 - lr * weight_decay, ...) are computed
// here in double, exactly as fastopt.kernels computes them, and cast to T once; the per-element
// loops are those of the compiled extension (fastopt/kernels.hpp, generic build).  The update rules
// are written out in the docstrings of python/fastopt/backends/numpy.py (the reference).
//
// Checks: every option is checked with the rules of fastopt.kernels (finite numbers;
// lr, momentum, weight_decay, eps, lr_decay, alpha, momentum_decay, lambd, step_size_min,
// step_size_max >= 0; beta1, beta2 in [0, 1); rho in [0, 1]; etaminus in (0, 1); etaplus > 1;
// Nesterov needs momentum > 0 and dampening == 0; Rprop's step_size_min <= step_size_max;
// step >= 1), and so are the pointers (param, grad and every state array the options need
// are non-null when n > 0; the carried values -- NAdam's mu_product, ASGD's eta and mu -- are
// never null, mu_product and mu in [0, 1], eta >= 0; no array or value written may overlap
// another).  ASGD refuses (1 + lambd * lr * step) ** alpha beyond double's range, where
// fastopt.kernels raises OverflowError.  A failed check throws std::invalid_argument
// before anything is written.  State arrays the options do not use may be null and are never
// touched.
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
#include "optimizers.h"

namespace fastopt {

// ------------------------------------------------------------------ options
// One struct per optimizer, generated from fastopt/optimizers.h (torch's names and defaults;
// FASTOPT_OPTIONS_<name> lists the fields in order): SGDOptions, AdagradOptions,
// RMSpropOptions, AdamOptions (AdamW: decoupled_weight_decay = true), AdamWOptions
// (torch.optim.AdamW's defaults, weight_decay = 1e-2), AdamaxOptions, NAdamOptions,
// RAdamOptions, AdadeltaOptions, RpropOptions (etas and step_sizes as etaminus, etaplus,
// step_size_min, step_size_max), ASGDOptions.  A real is a double, a flag a bool.
#define FASTOPT_HPP_REAL(option, def, rule) double option = def;
#define FASTOPT_HPP_FLAG(option, def) bool option = def;
#define FASTOPT_HPP_STRUCT(name, Cpp)                          \
  struct Cpp##Options {                                        \
    FASTOPT_OPTIONS_##name(FASTOPT_HPP_REAL, FASTOPT_HPP_FLAG) \
  };
FASTOPT_OPTIMIZERS(FASTOPT_HPP_STRUCT)
FASTOPT_HPP_STRUCT(adamw, AdamW)

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
inline std::string repr(bool v) { return v ? "True" : "False"; }

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// The rules of the table (fastopt/optimizers.h), those of python/fastopt/_validation.py.
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

inline void check_unit(const char* name, double v) {
  check_finite(name, v);
  if (!(v >= 0.0 && v <= 1.0)) fail(std::string(name) + " must be in [0, 1], got " + repr(v));
}

inline void check_open_unit(const char* name, double v) {
  check_finite(name, v);
  if (!(v > 0.0 && v < 1.0)) fail(std::string(name) + " must be in (0, 1), got " + repr(v));
}

inline void check_above_one(const char* name, double v) {
  check_finite(name, v);
  if (!(v > 1.0)) fail(std::string(name) + " must be > 1, got " + repr(v));
}

inline void check_step(std::int64_t step) {
  if (step < 1)
    fail("step must be >= 1 (the 1-based number of this update, 1 for the first), got " +
         std::to_string(step));
}

// Checks between options (after each option's own rule): SGD's and Rprop's.
template <class O>
void cross(const O&) {}

inline void cross(const RpropOptions& o) {
  if (o.step_size_min > o.step_size_max)
    fail("step_sizes must be (min, max) with min <= max, got step_size_min=" +
         repr(o.step_size_min) + ", step_size_max=" + repr(o.step_size_max));
}

inline void cross(const SGDOptions& o) {
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    fail("nesterov=True requires momentum > 0 and dampening == 0, got momentum=" +
         repr(o.momentum) + ", dampening=" + repr(o.dampening));
}

#define FASTOPT_HPP_CHECK(option, def, rule) check_##rule(#option, o.option);
#define FASTOPT_HPP_NO_CHECK(option, def)
#define FASTOPT_HPP_CHECK_OPTIONS(name, Cpp)                                  \
  inline void check_options(const Cpp##Options& o) {                          \
    FASTOPT_OPTIONS_##name(FASTOPT_HPP_CHECK, FASTOPT_HPP_NO_CHECK) cross(o); \
  }
FASTOPT_OPTIMIZERS(FASTOPT_HPP_CHECK_OPTIONS)

// One memory range of the call: its pointer and size, whether the call writes it, and its
// role for messages.
struct Arr {
  const void* ptr;
  std::size_t bytes;
  bool written;
  const char* role;
};

template <class T>
void check_size(std::size_t n) {
  if (n > SIZE_MAX / sizeof(T)) fail("n = " + std::to_string(n) + " elements is too large");
}

// No written range overlaps another (null pointers are unused state).
template <std::size_t K>
void check_arrays(const Arr (&a)[K]) {
  for (std::size_t i = 0; i < K; ++i) {
    if (a[i].ptr == nullptr || a[i].bytes == 0) continue;
    const auto lo = reinterpret_cast<std::uintptr_t>(a[i].ptr);
    for (std::size_t j = i + 1; j < K; ++j) {
      if (a[j].ptr == nullptr || a[j].bytes == 0 || !(a[i].written || a[j].written)) continue;
      const auto lo2 = reinterpret_cast<std::uintptr_t>(a[j].ptr);
      if (lo < lo2 + a[j].bytes && lo2 < lo + a[i].bytes)
        fail(std::string(a[i].role) + " and " + a[j].role +
             " share memory; every parameter, gradient and state array must be a separate "
             "array");
    }
  }
}

inline void need(const void* p, std::size_t n, const char* what) {
  if (n > 0 && p == nullptr) fail(std::string(what) + " is null");
}

// A state array that the option `option` (with value v) needs when it is non-zero: checked
// when needed, else ignored (returned as null, never touched).
template <class T, class V>
T* needed_if(T* p, std::size_t n, const char* role, const char* option, V v) {
  if (!(v != V(0))) return nullptr;
  if (n > 0 && p == nullptr)
    fail(std::string(option) + "=" + repr(v) + " needs a " + role + " (n zeros); pass one or set " +
         option + "=" + repr(V(0)));
  return p;
}

// A value carried between steps (NAdam's mu_product, ASGD's eta and mu): never null, its
// value checked by `check` (its rule in the table).
inline void check_carried(const double* p, const char* role, void (*check)(const char*, double),
                          double start) {
  if (p == nullptr)
    fail(std::string(role) + " is null; pass the address of a double (" + repr(start) +
         " before the first step)");
  check(role, *p);
}

// The decoupled weight decay factor 1 - lr * weight_decay, rounded as Python rounds it.
template <class O>
double decay(const O& o) {
  return 1.0 - opaque(o.lr * o.weight_decay);
}

// ------------------------------------------------------------------ kernels
// One overload per optimizer: the derived scalars, in double exactly as
// python/fastopt/_contract.py computes them (<name>_constants, <name>_per_step), cast to T
// once, and the loop of fastopt/kernels.hpp.  State arrays the options do not use are null.
// Powers of the step are libm's pow, as Python's beta ** float(step).
template <class T>
void kernel(const SGDOptions& o, std::int64_t step, T* p, const T* g, T* buf, std::size_t n) {
  generic::kernels::sgd<T>(p, g, buf, n, T(o.lr), T(o.momentum), T(1.0 - o.dampening),
                           T(o.weight_decay), o.weight_decay != 0.0, o.nesterov, o.maximize,
                           step == 1);
}

template <class T>
void kernel(const AdagradOptions& o, std::int64_t step, T* p, const T* g, T* sum, std::size_t n) {
  // lr / (1 + (t - 1) * lr_decay)
  const double clr = o.lr / (1.0 + opaque(static_cast<double>(step - 1) * o.lr_decay));
  generic::kernels::adagrad<T>(p, g, sum, n, T(clr), T(o.weight_decay), o.weight_decay != 0.0,
                               T(o.eps), o.maximize);
}

template <class T>
void kernel(const RMSpropOptions& o, std::int64_t, T* p, const T* g, T* sq, T* ga, T* buf,
            std::size_t n) {
  generic::kernels::rmsprop<T>(p, g, sq, ga, buf, n, T(o.lr), T(o.alpha), T(1.0 - o.alpha),
                               T(o.eps), T(o.weight_decay), o.weight_decay != 0.0, T(o.momentum),
                               o.centered, o.maximize);
}

// 1 - beta ** t
inline double bias_correction(double beta, std::int64_t step) {
  return 1.0 - std::pow(opaque(beta), static_cast<double>(step));
}

template <class T>
void kernel(const AdamOptions& o, std::int64_t step, T* p, const T* g, T* m, T* v, T* vmax,
            std::size_t n) {
  const double step_size = o.lr / bias_correction(o.beta1, step);
  const double inv_bc2_sqrt = 1.0 / std::pow(opaque(bias_correction(o.beta2, step)), 0.5);
  generic::kernels::adam<T>(p, g, m, v, vmax, n, T(1.0 - o.beta1), T(o.beta2), T(1.0 - o.beta2),
                            T(o.eps), T(o.weight_decay), o.weight_decay != 0.0, T(decay(o)),
                            T(step_size), T(inv_bc2_sqrt), o.decoupled_weight_decay, o.amsgrad,
                            o.maximize);
}

template <class T>
void kernel(const AdamaxOptions& o, std::int64_t step, T* p, const T* g, T* m, T* u,
            std::size_t n) {
  const double step_size = o.lr / bias_correction(o.beta1, step);
  generic::kernels::adamax<T>(p, g, m, u, n, T(1.0 - o.beta1), T(o.beta2), T(o.eps),
                              T(o.weight_decay), o.weight_decay != 0.0, T(step_size), o.maximize);
}

// torch keeps mu_product, ASGD's eta and mu as float32 tensors: each value is rounded to
// float32 (to nearest even; a value beyond float32's range becomes +-inf, as in torch and
// Python's struct.pack("f", x), written out so that no cast is out of range).
inline double round_f32(double x) {
  x = opaque(x);
  if (std::fabs(x) >= 0x1.ffffffp+127) return std::copysign(HUGE_VAL, x);
  return static_cast<double>(static_cast<float>(x));
}

template <class T>
void kernel(const NAdamOptions& o, std::int64_t step, T* p, const T* g, T* m, T* v,
            double* mu_product, std::size_t n) {
  const double t = static_cast<double>(step);
  const double bias_correction2 = bias_correction(o.beta2, step);
  const double mu =
      opaque(o.beta1 * (1.0 - opaque(0.5 * std::pow(0.96, opaque(t * o.momentum_decay)))));
  const double mu_next =
      opaque(o.beta1 * (1.0 - opaque(0.5 * std::pow(0.96, opaque((t + 1.0) * o.momentum_decay)))));
  const double product = round_f32(*mu_product * round_f32(mu));
  const double product_next = opaque(product * mu_next);
  const double grad_coef = -o.lr * (1.0 - mu) / (1.0 - product);
  const double avg_coef = (-o.lr * mu_next) / (1.0 - product_next);
  generic::kernels::nadam<T>(p, g, m, v, n, T(1.0 - o.beta1), T(o.beta2), T(1.0 - o.beta2),
                             T(o.eps), T(o.weight_decay), o.weight_decay != 0.0, T(decay(o)),
                             T(bias_correction2), T(grad_coef), T(avg_coef),
                             o.decoupled_weight_decay, o.maximize);
  *mu_product = product;
}

template <class T>
void kernel(const RAdamOptions& o, std::int64_t step, T* p, const T* g, T* m, T* v, std::size_t n) {
  // torch.optim.RAdam's scalars; the rectification (rho_t > 5) is decided in double.
  const double t = static_cast<double>(step);
  const double bc1 = bias_correction(o.beta1, step);
  const double bc2 = bias_correction(o.beta2, step);
  const double rho_inf = 2.0 / (1.0 - o.beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * std::pow(opaque(o.beta2), t) / bc2;
  const bool rectify = rho_t > 5.0;
  double step_size = o.lr / bc1;
  if (rectify) {
    const double r =
        (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t);
    step_size = o.lr * std::pow(opaque(bc2), 0.5) * std::pow(opaque(r), 0.5) / bc1;
  }
  generic::kernels::radam<T>(p, g, m, v, n, T(1.0 - o.beta1), T(o.beta2), T(1.0 - o.beta2),
                             T(o.eps), T(o.weight_decay), o.weight_decay != 0.0, T(decay(o)),
                             T(step_size), o.decoupled_weight_decay, rectify, o.maximize);
}

template <class T>
void kernel(const AdadeltaOptions& o, std::int64_t, T* p, const T* g, T* v, T* u, std::size_t n) {
  generic::kernels::adadelta<T>(p, g, v, u, n, T(o.lr), T(o.rho), T(1.0 - o.rho), T(o.eps),
                                T(o.weight_decay), o.weight_decay != 0.0, o.maximize);
}

template <class T>
void kernel(const RpropOptions& o, std::int64_t step, T* p, const T* g, T* prev, T* ss,
            std::size_t n) {
  // step 1 sets the step sizes to lr (torch's state init) without reading them
  generic::kernels::rprop<T>(p, g, prev, ss, n, T(o.lr), T(o.etaminus), T(o.etaplus),
                             T(o.step_size_min), T(o.step_size_max), step == 1, o.maximize);
}

template <class T>
void kernel(const ASGDOptions& o, std::int64_t step, T* p, const T* g, T* ax, double* eta,
            double* mu, std::size_t n) {
  // torch.optim.ASGD's eta and mu: read for this step (lr and 1 on step 1), then replaced by
  // lr / (1 + lambd lr t)^alpha and 1 / max(1, t - t0), each rounded to float32.
  const double t = static_cast<double>(step);
  const double eta_t = step == 1 ? round_f32(o.lr) : *eta;
  const double mu_t = step == 1 ? 1.0 : *mu;
  const double base = 1.0 + opaque(opaque(o.lambd * o.lr) * t);
  const double power = std::pow(opaque(base), o.alpha);
  if (std::isinf(power) && !std::isinf(base))  // Python's float ** raises OverflowError
    fail("(1 + lambd * lr * step) ** alpha is out of range of double for lambd=" + repr(o.lambd) +
         ", lr=" + repr(o.lr) + ", step=" + std::to_string(step) + ", alpha=" + repr(o.alpha));
  const double eta_next = round_f32(o.lr / power);
  const double since = t - o.t0;
  const double mu_next = round_f32(1.0 / (since > 1.0 ? since : 1.0));
  const double decay = 1.0 - opaque(o.lambd * eta_t);
  generic::kernels::asgd<T>(p, g, ax, n, T(eta_t), T(decay), T(mu_t), T(o.weight_decay),
                            o.weight_decay != 0.0, mu_t != 1.0, o.maximize);
  *eta = eta_next;
  *mu = mu_next;
}

}  // namespace detail

// ------------------------------------------------------------------ the step functions
// One per optimizer, generated from fastopt/optimizers.h:
//
//   template <class T>  // float or double
//   void <name>(T* param, const T* grad, <state>, std::size_t n, std::int64_t step,
//               const <Cpp>Options& options = <Cpp>Options());
//
// with <state> the FASTOPT_STATE_<name> entries in order: T* per array (an O array may be
// nullptr while its option is 0/false), double* per carried value.  That is
//
//   sgd(param, grad, momentum_buffer, n, step, options)   // set to grad on step 1
//   adagrad(param, grad, state_sum, n, step, options)     // starts at initial_accumulator_value
//   rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, n, step, options)
//   adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, step, options)
//   adamax(param, grad, exp_avg, exp_inf, n, step, options)
//   nadam(param, grad, exp_avg, exp_avg_sq, &mu_product, n, step, options)
//   radam(param, grad, exp_avg, exp_avg_sq, n, step, options)
//   adadelta(param, grad, square_avg, acc_delta, n, step, options)
//   rprop(param, grad, prev, step_size_buffer, n, step, options)  // step sizes: lr on step 1
//   asgd(param, grad, ax, &eta, &mu, n, step, options)
//
// Every state array starts at zero unless said otherwise; NAdam's mu_product starts at 1.0
// and each call replaces it with the product after the step (rounded to float32 as torch
// keeps it), also when n == 0; ASGD's eta and mu likewise become the next step's values
// (not read on step 1, where they are lr and 1.0: start them at 0.0 and 1.0).  Checks, in
// order: step, each option by its rule and the cross checks (SGD's Nesterov, Rprop's
// step_sizes), param and grad and every needed state non-null when n > 0 (a carried value
// always), each carried value by its rule, no written range overlapping another, and
// then the derived scalars (ASGD's power of the step must not overflow).
#define FASTOPT_HPP_ARRAY(T, array) detail::same_t<T>*array,
#define FASTOPT_HPP_OPTIONAL(T, array, option) detail::same_t<T>*array,
#define FASTOPT_HPP_VALUE(T, value, rule, start) double *value,
#define FASTOPT_HPP_NEED(T, array) detail::need(array, n, #array);
#define FASTOPT_HPP_NEED_IF(T, array, option) \
  array = detail::needed_if(array, n, #array, #option, o.option);
#define FASTOPT_HPP_CARRIED(T, value, rule, start) \
  detail::check_carried(value, #value, detail::check_##rule, start);
#define FASTOPT_HPP_RANGE(T, array) {array, n * sizeof(T), true, #array},
#define FASTOPT_HPP_RANGE_IF(T, array, option) FASTOPT_HPP_RANGE(T, array)
#define FASTOPT_HPP_VALUE_RANGE(T, value, rule, start) {value, sizeof(double), true, #value},
#define FASTOPT_HPP_FUNCTION(name, Cpp)                                                         \
  template <class T>                                                                            \
  void name(T* param, const detail::same_t<T>* grad,                                            \
            FASTOPT_STATE_##name(FASTOPT_HPP_ARRAY, FASTOPT_HPP_OPTIONAL, FASTOPT_HPP_VALUE, T) \
                std::size_t n,                                                                  \
            std::int64_t step, const Cpp##Options& options = Cpp##Options()) {                  \
    detail::check_type<T>();                                                                    \
    const Cpp##Options& o = options;                                                            \
    detail::check_step(step);                                                                   \
    detail::check_options(o);                                                                   \
    detail::check_size<T>(n);                                                                   \
    detail::need(param, n, "param");                                                            \
    detail::need(grad, n, "grad");                                                              \
    FASTOPT_STATE_##name(FASTOPT_HPP_NEED, FASTOPT_HPP_NEED_IF, FASTOPT_HPP_CARRIED, T)         \
        detail::check_arrays({{param, n * sizeof(T), true, "param"},                            \
                              {grad, n * sizeof(T), false, "grad"},                             \
                              FASTOPT_STATE_##name(FASTOPT_HPP_RANGE, FASTOPT_HPP_RANGE_IF,     \
                                                   FASTOPT_HPP_VALUE_RANGE, T)});               \
    detail::kernel<T>(o, step, param, grad, FASTOPT_STATE_ARGS(name) n);                        \
  }
FASTOPT_OPTIMIZERS(FASTOPT_HPP_FUNCTION)

// AdamOptions from AdamWOptions: the same values and decoupled_weight_decay = true.
#define FASTOPT_HPP_COPY(option, ...) o.option = w.option;
inline AdamOptions to_adam(const AdamWOptions& w) {
  AdamOptions o;
  FASTOPT_OPTIONS_adamw(FASTOPT_HPP_COPY, FASTOPT_HPP_COPY) o.decoupled_weight_decay = true;
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
