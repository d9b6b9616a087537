// The contract between the bindings (cpp/src/bindings.cpp: checks, threads) and the
// per-ISA kernel builds (cpp/src/kernels_<isa>.cpp): one plain struct describing a step
// (which optimizer, its hyperparameters in double) and one row per parameter (raw pointers).
// Each ISA build exports `run_<isa>(job, row, lo, hi)`, which updates elements [lo, hi) of
// every array of the row.  The kernels are elementwise, so any split of [0, n) gives the
// same bits as one call over everything.
#pragma once

#include <cstddef>

namespace fastopt {

// The parameter's (and gradient's) storage: float32, float64, or half precision (bfloat16,
// IEEE float16) whose state arrays and arithmetic are float32.
enum class DType { f32, f64, bf16, f16 };
enum class Op {
  sgd,
  adagrad,
  rmsprop,
  adam,
  adamax,
  nadam,
  radam,
  adadelta,
  adafactor_update,
  muon_update,
  decay_add,
  rprop,
  asgd,
  probe,
  check_finite
};

constexpr int kMaxSlots = 5;

struct Row {
  DType dtype;
  std::size_t n;
  void* ptr[kMaxSlots];  // slot 0: param, slot 1: grad (dtype), 2..: state (nullptr if absent)
  // Master weights (half rows only): a float32 copy of the param (n floats), which the
  // update reads and writes instead of the param; the param is then written as the master
  // rounded to nearest even, in the same pass (see run_half_blocked).  nullptr: none.
  void* master = nullptr;
};

// Hyperparameters arrive in double; each chunk casts them to the row's type once (the same
// float(x) the original single-ISA bindings did, so the bits are unchanged).
struct Job {
  Op op;
  double lr = 0, momentum = 0, one_minus_damp = 0, wd = 0, clr = 0, eps = 0, alpha = 0,
         one_minus_alpha = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0, decay = 0,
         step_size = 0, inv_bc2_sqrt = 0, rho = 0, one_minus_rho = 0, bias_correction2 = 0,
         grad_coef = 0, avg_coef = 0, etaminus = 0, etaplus = 0, step_size_min = 0,
         step_size_max = 0, eta = 0, mu = 0, weight = 0;
  bool nesterov = false, maximize = false, first = false, centered = false, decoupled = false,
       amsgrad = false, rectify = false, average = false, lerp = false;
  int nread = 0, nwrite = 0;  // probe only
};

using RunFn = void (*)(const Job&, const Row&, std::size_t lo, std::size_t hi);

void run_generic(const Job&, const Row&, std::size_t, std::size_t);
#if defined(FASTOPT_HAVE_X86_ISAS)
void run_avx2(const Job&, const Row&, std::size_t, std::size_t);
void run_avx512(const Job&, const Row&, std::size_t, std::size_t);
#if defined(FASTOPT_HAVE_AVX512BF16)
void run_avx512bf16(const Job&, const Row&, std::size_t, std::size_t);
#endif
#endif

}  // namespace fastopt
