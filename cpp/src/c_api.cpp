// The C ABI (fastopt/fastopt.h) over the C++ API (fastopt/fastopt.hpp): converts the option
// structs, catches every exception, and keeps the message of the last failure per thread.
#define FASTOPT_C_BUILDING 1
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>

#include "fastopt/fastopt.h"
#include "fastopt/fastopt.hpp"

namespace {

thread_local char g_last_error[1024] = "";

void set_error(const char* msg) {
  std::strncpy(g_last_error, msg, sizeof g_last_error - 1);
  g_last_error[sizeof g_last_error - 1] = '\0';
}

// Runs f; returns 0, or an error code with the message stored.  Nothing escapes.
template <class F>
int guarded(F&& f) noexcept {
  try {
    f();
    return FASTOPT_OK;
  } catch (const std::invalid_argument& e) {
    set_error(e.what());
    return FASTOPT_INVALID_ARGUMENT;
  } catch (const std::exception& e) {
    set_error(e.what());
    return FASTOPT_INTERNAL_ERROR;
  } catch (...) {
    set_error("unknown error");
    return FASTOPT_INTERNAL_ERROR;
  }
}

fastopt::SGDOptions to_cpp(const fastopt_sgd_options* c) {
  fastopt::SGDOptions o;
  if (!c) return o;
  o.lr = c->lr;
  o.momentum = c->momentum;
  o.dampening = c->dampening;
  o.weight_decay = c->weight_decay;
  o.nesterov = c->nesterov != 0;
  o.maximize = c->maximize != 0;
  return o;
}

fastopt::AdagradOptions to_cpp(const fastopt_adagrad_options* c) {
  fastopt::AdagradOptions o;
  if (!c) return o;
  o.lr = c->lr;
  o.lr_decay = c->lr_decay;
  o.weight_decay = c->weight_decay;
  o.eps = c->eps;
  o.maximize = c->maximize != 0;
  return o;
}

fastopt::RMSpropOptions to_cpp(const fastopt_rmsprop_options* c) {
  fastopt::RMSpropOptions o;
  if (!c) return o;
  o.lr = c->lr;
  o.alpha = c->alpha;
  o.eps = c->eps;
  o.weight_decay = c->weight_decay;
  o.momentum = c->momentum;
  o.centered = c->centered != 0;
  o.maximize = c->maximize != 0;
  return o;
}

fastopt::AdamOptions to_cpp(const fastopt_adam_options* c) {
  fastopt::AdamOptions o;
  if (!c) return o;
  o.lr = c->lr;
  o.beta1 = c->beta1;
  o.beta2 = c->beta2;
  o.eps = c->eps;
  o.weight_decay = c->weight_decay;
  o.amsgrad = c->amsgrad != 0;
  o.maximize = c->maximize != 0;
  o.decoupled_weight_decay = c->decoupled_weight_decay != 0;
  return o;
}

}  // namespace

extern "C" {

fastopt_sgd_options fastopt_sgd_default_options(void) {
  const fastopt::SGDOptions d;
  return {d.lr, d.momentum, d.dampening, d.weight_decay, d.nesterov, d.maximize};
}

fastopt_adagrad_options fastopt_adagrad_default_options(void) {
  const fastopt::AdagradOptions d;
  return {d.lr, d.lr_decay, d.weight_decay, d.eps, d.maximize};
}

fastopt_rmsprop_options fastopt_rmsprop_default_options(void) {
  const fastopt::RMSpropOptions d;
  return {d.lr, d.alpha, d.eps, d.weight_decay, d.momentum, d.centered, d.maximize};
}

fastopt_adam_options fastopt_adam_default_options(void) {
  const fastopt::AdamOptions d;
  return {d.lr,           d.beta1,   d.beta2,    d.eps,
          d.weight_decay, d.amsgrad, d.maximize, d.decoupled_weight_decay};
}

fastopt_adam_options fastopt_adamw_default_options(void) {
  const fastopt::AdamOptions d = fastopt::to_adam(fastopt::AdamWOptions());
  return {d.lr,           d.beta1,   d.beta2,    d.eps,
          d.weight_decay, d.amsgrad, d.maximize, d.decoupled_weight_decay};
}

#define FASTOPT_C_SGD(SUFFIX, T)                                                                \
  int fastopt_sgd_##SUFFIX(T* param, const T* grad, T* momentum_buffer, size_t n, int64_t step, \
                           const fastopt_sgd_options* options) {                                \
    return guarded(                                                                             \
        [&] { fastopt::sgd<T>(param, grad, momentum_buffer, n, step, to_cpp(options)); });      \
  }
FASTOPT_C_SGD(f32, float)
FASTOPT_C_SGD(f64, double)

#define FASTOPT_C_ADAGRAD(SUFFIX, T)                                                          \
  int fastopt_adagrad_##SUFFIX(T* param, const T* grad, T* state_sum, size_t n, int64_t step, \
                               const fastopt_adagrad_options* options) {                      \
    return guarded(                                                                           \
        [&] { fastopt::adagrad<T>(param, grad, state_sum, n, step, to_cpp(options)); });      \
  }
FASTOPT_C_ADAGRAD(f32, float)
FASTOPT_C_ADAGRAD(f64, double)

#define FASTOPT_C_RMSPROP(SUFFIX, T)                                                   \
  int fastopt_rmsprop_##SUFFIX(T* param, const T* grad, T* square_avg, T* grad_avg,    \
                               T* momentum_buffer, size_t n, int64_t step,             \
                               const fastopt_rmsprop_options* options) {               \
    return guarded([&] {                                                               \
      fastopt::rmsprop<T>(param, grad, square_avg, grad_avg, momentum_buffer, n, step, \
                          to_cpp(options));                                            \
    });                                                                                \
  }
FASTOPT_C_RMSPROP(f32, float)
FASTOPT_C_RMSPROP(f64, double)

#define FASTOPT_C_ADAM(SUFFIX, T)                                                                  \
  int fastopt_adam_##SUFFIX(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, \
                            size_t n, int64_t step, const fastopt_adam_options* options) {         \
    return guarded([&] {                                                                           \
      fastopt::adam<T>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n, step,                  \
                       to_cpp(options));                                                           \
    });                                                                                            \
  }
FASTOPT_C_ADAM(f32, float)
FASTOPT_C_ADAM(f64, double)

const char* fastopt_last_error(void) { return g_last_error; }

}  // extern "C"
