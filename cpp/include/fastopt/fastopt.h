/* fastopt's C ABI: PyTorch-exact optimizer steps on raw arrays, from C99 or any language
 * with a C FFI (Rust, Julia, Fortran, ...).  Library: fastopt::c (libfastopt_c, shared).
 *
 *     #include <fastopt/fastopt.h>
 *
 *     fastopt_adam_options opt = fastopt_adam_default_options();
 *     opt.lr = 1e-2;
 *     for (int64_t t = 1; t <= steps; ++t) {              // step is 1-based, as torch's
 *       compute_gradient(w, g, n);
 *       if (fastopt_adam_f32(w, g, m, v, NULL, n, t, &opt) != 0) {
 *         fprintf(stderr, "fastopt: %s\n", fastopt_last_error());
 *         return 1;
 *       }
 *     }
 *
 * Optimizers: sgd, adagrad, rmsprop, adam (AdamW: decoupled_weight_decay = 1), adamax,
 * nadam, radam, adadelta, rprop, asgd; their options and state are listed in fastopt/optimizers.h.
 *
 * Each function is the C++ function of fastopt/fastopt.hpp with the same name and argument
 * order (options by pointer; NULL means the defaults), for float (_f32) and double (_f64),
 * and gives the same bits as fastopt.kernels in Python.  Booleans are ints (0 or not 0).
 * It returns FASTOPT_OK (0), or a non-zero code with nothing written; then
 * fastopt_last_error() describes the problem (per thread, valid until the thread's next
 * fastopt call).  No C++ exception leaves the library.
 */
#ifndef FASTOPT_FASTOPT_H
#define FASTOPT_FASTOPT_H

#include <stddef.h>
#include <stdint.h>

#include "optimizers.h"

#if defined(_WIN32)
#if defined(FASTOPT_C_BUILDING)
#define FASTOPT_C_API __declspec(dllexport)
#else
#define FASTOPT_C_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define FASTOPT_C_API __attribute__((visibility("default")))
#else
#define FASTOPT_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define FASTOPT_OK 0
#define FASTOPT_INVALID_ARGUMENT 1 /* an option, the step or a pointer failed its check */
#define FASTOPT_INTERNAL_ERROR 2   /* anything else (should not happen) */

/* The options of each optimizer: typedef struct fastopt_<name>_options { ... }, with the fields
 * of FASTOPT_OPTIONS_<name> in fastopt/optimizers.h (the table, with torch's defaults), in
 * that order: a double per real R(...), an int per flag F(...).  For example
 *
 *   typedef struct fastopt_adam_options {
 *     double lr, beta1, beta2, eps, weight_decay;
 *     int amsgrad, maximize, decoupled_weight_decay;
 *   } fastopt_adam_options;
 *
 * fastopt_<name>_default_options() returns torch's defaults; AdamW is fastopt_adam_* with
 * decoupled_weight_decay = 1, and fastopt_adamw_default_options() gives its defaults
 * (weight_decay = 1e-2).  FFI generators that cannot expand macros (cffi's cdef, ...) can
 * read the preprocessed header: cc -E -P fastopt/fastopt.h. */
#define FASTOPT_C_REAL(option, def, rule) double option;
#define FASTOPT_C_FLAG(option, def) int option;
#define FASTOPT_C_STRUCT(name, Cpp)                        \
  typedef struct fastopt_##name##_options {                \
    FASTOPT_OPTIONS_##name(FASTOPT_C_REAL, FASTOPT_C_FLAG) \
  } fastopt_##name##_options;
FASTOPT_OPTIMIZERS(FASTOPT_C_STRUCT)

/* The step functions, for float (_f32) and double (_f64):
 *
 *   int fastopt_<name>_f32(float* param, const float* grad, <state>, size_t n, int64_t step,
 *                          const fastopt_<name>_options* options);
 *
 * <state> is FASTOPT_STATE_<name> of fastopt/optimizers.h in order: an array of n elements
 * (float* <array>) for A and O entries (an O array may be NULL while its option is 0), a
 * double* for a P entry, never NULL (NAdam's mu_product: 1.0 before the first step; ASGD's
 * eta and mu: 0.0 and 1.0; each successful call replaces them with the next step's values).
 * For example
 *
 *   fastopt_sgd_f32(param, grad, momentum_buffer, n, step, options)
 *   fastopt_rmsprop_f64(param, grad, square_avg, grad_avg, momentum_buffer, n, step, options)
 *   fastopt_adam_f32(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, step, options)
 *   fastopt_adamax_f32(param, grad, exp_avg, exp_inf, n, step, options)
 *   fastopt_nadam_f32(param, grad, exp_avg, exp_avg_sq, &mu_product, n, step, options)
 *   fastopt_adadelta_f32(param, grad, square_avg, acc_delta, n, step, options)
 *   fastopt_rprop_f32(param, grad, prev, step_size_buffer, n, step, options)
 *   fastopt_asgd_f64(param, grad, ax, &eta, &mu, n, step, options) */
#define FASTOPT_C_ARRAY(T, array) T *array,
#define FASTOPT_C_OPTIONAL(T, array, option) T *array,
#define FASTOPT_C_VALUE(T, value, rule, start) double *value,
#define FASTOPT_C_SIGNATURE(name, SUFFIX, T)                                                  \
  int fastopt_##name##_##SUFFIX(                                                              \
      T* param, const T* grad,                                                                \
      FASTOPT_STATE_##name(FASTOPT_C_ARRAY, FASTOPT_C_OPTIONAL, FASTOPT_C_VALUE, T) size_t n, \
      int64_t step, const fastopt_##name##_options* options)
#define FASTOPT_C_DECLARE(name, Cpp)                                             \
  FASTOPT_C_API fastopt_##name##_options fastopt_##name##_default_options(void); \
  FASTOPT_C_API FASTOPT_C_SIGNATURE(name, f32, float);                           \
  FASTOPT_C_API FASTOPT_C_SIGNATURE(name, f64, double);
FASTOPT_OPTIMIZERS(FASTOPT_C_DECLARE)
FASTOPT_C_API fastopt_adam_options fastopt_adamw_default_options(void);

/* The message of this thread's last failed call ("" if none). */
FASTOPT_C_API const char* fastopt_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTOPT_FASTOPT_H */
