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

/* torch.optim.SGD; defaults lr=1e-3, momentum=0, dampening=0, weight_decay=0. */
typedef struct fastopt_sgd_options {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  int nesterov;
  int maximize;
} fastopt_sgd_options;

/* torch.optim.Adagrad; defaults lr=1e-2, lr_decay=0, weight_decay=0, eps=1e-10.  The caller
 * fills state_sum with initial_accumulator_value (0 by default) before the first step. */
typedef struct fastopt_adagrad_options {
  double lr;
  double lr_decay;
  double weight_decay;
  double eps;
  int maximize;
} fastopt_adagrad_options;

/* torch.optim.RMSprop; defaults lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0. */
typedef struct fastopt_rmsprop_options {
  double lr;
  double alpha;
  double eps;
  double weight_decay;
  double momentum;
  int centered;
  int maximize;
} fastopt_rmsprop_options;

/* torch.optim.Adam; defaults lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.
 * AdamW is decoupled_weight_decay=1 (fastopt_adamw_default_options: weight_decay=1e-2). */
typedef struct fastopt_adam_options {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  int amsgrad;
  int maximize;
  int decoupled_weight_decay;
} fastopt_adam_options;

FASTOPT_C_API fastopt_sgd_options fastopt_sgd_default_options(void);
FASTOPT_C_API fastopt_adagrad_options fastopt_adagrad_default_options(void);
FASTOPT_C_API fastopt_rmsprop_options fastopt_rmsprop_default_options(void);
FASTOPT_C_API fastopt_adam_options fastopt_adam_default_options(void);
FASTOPT_C_API fastopt_adam_options fastopt_adamw_default_options(void);

/* momentum_buffer may be NULL when momentum == 0; on step 1 it is set to the gradient. */
FASTOPT_C_API int fastopt_sgd_f32(float* param, const float* grad, float* momentum_buffer, size_t n,
                                  int64_t step, const fastopt_sgd_options* options);
FASTOPT_C_API int fastopt_sgd_f64(double* param, const double* grad, double* momentum_buffer,
                                  size_t n, int64_t step, const fastopt_sgd_options* options);

FASTOPT_C_API int fastopt_adagrad_f32(float* param, const float* grad, float* state_sum, size_t n,
                                      int64_t step, const fastopt_adagrad_options* options);
FASTOPT_C_API int fastopt_adagrad_f64(double* param, const double* grad, double* state_sum,
                                      size_t n, int64_t step,
                                      const fastopt_adagrad_options* options);

/* grad_avg may be NULL unless centered, momentum_buffer unless momentum > 0. */
FASTOPT_C_API int fastopt_rmsprop_f32(float* param, const float* grad, float* square_avg,
                                      float* grad_avg, float* momentum_buffer, size_t n,
                                      int64_t step, const fastopt_rmsprop_options* options);
FASTOPT_C_API int fastopt_rmsprop_f64(double* param, const double* grad, double* square_avg,
                                      double* grad_avg, double* momentum_buffer, size_t n,
                                      int64_t step, const fastopt_rmsprop_options* options);

/* max_exp_avg_sq may be NULL unless amsgrad. */
FASTOPT_C_API int fastopt_adam_f32(float* param, const float* grad, float* exp_avg,
                                   float* exp_avg_sq, float* max_exp_avg_sq, size_t n, int64_t step,
                                   const fastopt_adam_options* options);
FASTOPT_C_API int fastopt_adam_f64(double* param, const double* grad, double* exp_avg,
                                   double* exp_avg_sq, double* max_exp_avg_sq, size_t n,
                                   int64_t step, const fastopt_adam_options* options);

/* The message of this thread's last failed call ("" if none). */
FASTOPT_C_API const char* fastopt_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTOPT_FASTOPT_H */
