/* fastopt's embedding table: every optimizer of the C++ API (fastopt/fastopt.hpp) and the C
 * ABI (fastopt/fastopt.h), with its options and its state, written once.  Both headers
 * generate their declarations from these lists (X-macros), so that an optimizer is one
 * entry here plus its derived scalars (detail::kernel in fastopt.hpp); the C structs, the
 * C++ structs, their defaults, the option checks, the function signatures and the C
 * wrappers follow.  C99 and C++ alike; it defines macros only.
 *
 * FASTOPT_OPTIMIZERS(X)      X(name, Cpp) per optimizer: C names fastopt_<name>_*, C++
 *                            fastopt::<name> and fastopt::<Cpp>Options.
 * FASTOPT_OPTIONS_<name>(R, F)  its options, in the order of the C struct (which is the ABI):
 *                            R(option, default, rule) a real (C double), F(option, default) a
 *                            flag (C int, C++ bool).  Rules: nonneg (finite, >= 0), finite,
 *                            beta (in [0, 1)), unit (in [0, 1]).  The names and defaults are
 *                            torch's (python/fastopt/_contract.py; tests/test_embedding.py
 *                            compares both).
 * FASTOPT_STATE_<name>(A, O, P, T)  its state, in argument order after param and grad:
 *                            A(T, array) an array of n T that is always needed, O(T, array,
 *                            option) one needed when that option is non-zero (true), P(T,
 *                            value) one double read before the step and written after it
 *                            (NAdam's running product).
 *
 * Adding an optimizer whose kernel is in fastopt/kernels.hpp: its three lines here (an
 * X(...) entry and the two lists), and in fastopt.hpp a detail::kernel overload that
 * computes its derived scalars in double exactly as python/fastopt/_contract.py does and
 * calls the kernel; plus, if its options constrain each other, a detail::cross overload.
 * tests/test_embedding.py then needs its case rows (VALID, INVALID, STATE).
 */
#ifndef FASTOPT_OPTIMIZERS_H
#define FASTOPT_OPTIMIZERS_H

/* A table, laid out by hand: */
/* clang-format off */
#define FASTOPT_OPTIMIZERS(X)                                                         \
  X(sgd, SGD) X(adagrad, Adagrad) X(rmsprop, RMSprop) X(adam, Adam) X(adamax, Adamax) \
  X(nadam, NAdam) X(radam, RAdam) X(adadelta, Adadelta)

/* lr, betas, eps and weight_decay of the Adam family, with the given lr and weight_decay
 * defaults. */
#define FASTOPT_ADAM_FAMILY(R, LR, WD)                                              \
  R(lr, LR, nonneg) R(beta1, 0.9, beta) R(beta2, 0.999, beta) R(eps, 1e-8, nonneg) \
  R(weight_decay, WD, nonneg)

/* torch.optim.SGD.  momentum_buffer: set to the gradient on step 1 (torch's lazy start). */
#define FASTOPT_OPTIONS_sgd(R, F)                                                    \
  R(lr, 1e-3, nonneg) R(momentum, 0.0, nonneg) R(dampening, 0.0, finite)           \
  R(weight_decay, 0.0, nonneg) F(nesterov, 0) F(maximize, 0)
#define FASTOPT_STATE_sgd(A, O, P, T) O(T, momentum_buffer, momentum)

/* torch.optim.Adagrad.  The caller fills state_sum with initial_accumulator_value (0 by
 * default) before the first step. */
#define FASTOPT_OPTIONS_adagrad(R, F)                                                \
  R(lr, 1e-2, nonneg) R(lr_decay, 0.0, nonneg) R(weight_decay, 0.0, nonneg)        \
  R(eps, 1e-10, nonneg) F(maximize, 0)
#define FASTOPT_STATE_adagrad(A, O, P, T) A(T, state_sum)

/* torch.optim.RMSprop (no bias correction: step is only checked). */
#define FASTOPT_OPTIONS_rmsprop(R, F)                                                \
  R(lr, 1e-2, nonneg) R(alpha, 0.99, nonneg) R(eps, 1e-8, nonneg)                  \
  R(weight_decay, 0.0, nonneg) R(momentum, 0.0, nonneg) F(centered, 0) F(maximize, 0)
#define FASTOPT_STATE_rmsprop(A, O, P, T)                                            \
  A(T, square_avg) O(T, grad_avg, centered) O(T, momentum_buffer, momentum)

/* torch.optim.Adam; torch.optim.AdamW is decoupled_weight_decay = 1, or the adamw lists
 * (C++: fastopt::adamw with AdamWOptions; C: fastopt_adamw_default_options). */
#define FASTOPT_OPTIONS_adam(R, F)                                                   \
  FASTOPT_ADAM_FAMILY(R, 1e-3, 0.0) F(amsgrad, 0) F(maximize, 0) F(decoupled_weight_decay, 0)
#define FASTOPT_STATE_adam(A, O, P, T)                                               \
  A(T, exp_avg) A(T, exp_avg_sq) O(T, max_exp_avg_sq, amsgrad)
#define FASTOPT_OPTIONS_adamw(R, F)                                                  \
  FASTOPT_ADAM_FAMILY(R, 1e-3, 1e-2) F(amsgrad, 0) F(maximize, 0)
#define FASTOPT_STATE_adamw FASTOPT_STATE_adam

/* torch.optim.Adamax.  exp_inf: the exponentially weighted infinity norm. */
#define FASTOPT_OPTIONS_adamax(R, F) FASTOPT_ADAM_FAMILY(R, 2e-3, 0.0) F(maximize, 0)
#define FASTOPT_STATE_adamax(A, O, P, T) A(T, exp_avg) A(T, exp_inf)

/* torch.optim.NAdam.  mu_product: the running product of the momentum coefficients, 1.0
 * before the first step, kept rounded to float32 as torch keeps it. */
#define FASTOPT_OPTIONS_nadam(R, F)                                                  \
  FASTOPT_ADAM_FAMILY(R, 2e-3, 0.0) R(momentum_decay, 4e-3, nonneg)                \
  F(decoupled_weight_decay, 0) F(maximize, 0)
#define FASTOPT_STATE_nadam(A, O, P, T) A(T, exp_avg) A(T, exp_avg_sq) P(T, mu_product)

/* torch.optim.RAdam. */
#define FASTOPT_OPTIONS_radam(R, F)                                                  \
  FASTOPT_ADAM_FAMILY(R, 1e-3, 0.0) F(decoupled_weight_decay, 0) F(maximize, 0)
#define FASTOPT_STATE_radam(A, O, P, T) A(T, exp_avg) A(T, exp_avg_sq)

/* torch.optim.Adadelta (no bias correction: step is only checked). */
#define FASTOPT_OPTIONS_adadelta(R, F)                                               \
  R(lr, 1.0, nonneg) R(rho, 0.9, unit) R(eps, 1e-6, nonneg) R(weight_decay, 0.0, nonneg) \
  F(maximize, 0)
#define FASTOPT_STATE_adadelta(A, O, P, T) A(T, square_avg) A(T, acc_delta)
/* clang-format on */

/* The state arguments of optimizer `name` as a list of names, each followed by a comma. */
#define FASTOPT_ARG(T, x) x,
#define FASTOPT_ARG_IF(T, x, option) x,
#define FASTOPT_STATE_ARGS(name) FASTOPT_STATE_##name(FASTOPT_ARG, FASTOPT_ARG_IF, FASTOPT_ARG, T)

#endif /* FASTOPT_OPTIMIZERS_H */
