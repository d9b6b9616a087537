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
 *                            beta (in [0, 1)), unit (in [0, 1]), open_unit (in (0, 1)),
 *                            above_one (finite, > 1).  The names and defaults are torch's
 *                            (python/fastopt/_contract.py; tests/test_embedding.py compares
 *                            both); a pair of torch's (betas, etas, step_sizes) is two reals
 *                            named as the contract names its elements (beta1, beta2, ...).
 * FASTOPT_STATE_<name>(A, O, P, T)  its state, in argument order after param and grad:
 *                            A(T, array) an array of n T that is always needed, O(T, array,
 *                            option) one needed when that option is non-zero (true), P(T,
 *                            value, rule, start) one double, never null, read before the step
 *                            (checked by its rule) and written after it, `start` before the
 *                            first step (NAdam's running product, ASGD's eta and mu).
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
  X(nadam, NAdam) X(radam, RAdam) X(adadelta, Adadelta) X(rprop, Rprop) X(asgd, ASGD)

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
#define FASTOPT_STATE_nadam(A, O, P, T) A(T, exp_avg) A(T, exp_avg_sq) P(T, mu_product, unit, 1.0)

/* torch.optim.RAdam. */
#define FASTOPT_OPTIONS_radam(R, F)                                                  \
  FASTOPT_ADAM_FAMILY(R, 1e-3, 0.0) F(decoupled_weight_decay, 0) F(maximize, 0)
#define FASTOPT_STATE_radam(A, O, P, T) A(T, exp_avg) A(T, exp_avg_sq)

/* torch.optim.Adadelta (no bias correction: step is only checked). */
#define FASTOPT_OPTIONS_adadelta(R, F)                                               \
  R(lr, 1.0, nonneg) R(rho, 0.9, unit) R(eps, 1e-6, nonneg) R(weight_decay, 0.0, nonneg) \
  F(maximize, 0)
#define FASTOPT_STATE_adadelta(A, O, P, T) A(T, square_avg) A(T, acc_delta)

/* torch.optim.Rprop: etas = (etaminus, etaplus), step_sizes = (step_size_min,
 * step_size_max), step_size_min <= step_size_max.  prev: the previous (zeroed where the sign
 * flipped) gradient, zeros before step 1; step_size_buffer: each element's step size, set
 * to lr on step 1 (torch's start: its content is not read then). */
#define FASTOPT_OPTIONS_rprop(R, F)                                                  \
  R(lr, 1e-2, nonneg) R(etaminus, 0.5, open_unit) R(etaplus, 1.2, above_one)       \
  R(step_size_min, 1e-6, nonneg) R(step_size_max, 50.0, nonneg) F(maximize, 0)
#define FASTOPT_STATE_rprop(A, O, P, T) A(T, prev) A(T, step_size_buffer)

/* torch.optim.ASGD.  ax: the average, zeros before step 1.  eta and mu: this step's
 * learning rate and averaging weight, which each call replaces with the next step's (torch
 * computes them at the end of a step and keeps them rounded to float32); on step 1 they
 * are not read (torch starts them at lr and 1), so 0.0 and 1.0 will do. */
#define FASTOPT_OPTIONS_asgd(R, F)                                                   \
  R(lr, 1e-2, nonneg) R(lambd, 1e-4, nonneg) R(alpha, 0.75, nonneg) R(t0, 1e6, finite) \
  R(weight_decay, 0.0, nonneg) F(maximize, 0)
#define FASTOPT_STATE_asgd(A, O, P, T) A(T, ax) P(T, eta, nonneg, 0.0) P(T, mu, unit, 1.0)
/* clang-format on */

/* The state arguments of optimizer `name` as a list of names, each followed by a comma. */
#define FASTOPT_ARG(T, x) x,
#define FASTOPT_ARG_IF(T, x, option) x,
#define FASTOPT_ARG_CARRIED(T, x, rule, start) x,
#define FASTOPT_STATE_ARGS(name) \
  FASTOPT_STATE_##name(FASTOPT_ARG, FASTOPT_ARG_IF, FASTOPT_ARG_CARRIED, T)

#endif /* FASTOPT_OPTIMIZERS_H */
