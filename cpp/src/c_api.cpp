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

// The C struct <-> the C++ struct of each optimizer, field by field from the table.
#define FASTOPT_C_TO_REAL(option, def, rule) o.option = c->option;
#define FASTOPT_C_TO_FLAG(option, def) o.option = c->option != 0;
#define FASTOPT_C_FROM_REAL(option, def, rule) c.option = o.option;
#define FASTOPT_C_FROM_FLAG(option, def) c.option = o.option ? 1 : 0;
#define FASTOPT_C_CONVERT(name, Cpp)                                           \
  fastopt::Cpp##Options to_cpp(const fastopt_##name##_options* c) {            \
    fastopt::Cpp##Options o;                                                   \
    if (c) {                                                                   \
      FASTOPT_OPTIONS_##name(FASTOPT_C_TO_REAL, FASTOPT_C_TO_FLAG)             \
    }                                                                          \
    return o;                                                                  \
  }                                                                            \
  fastopt_##name##_options to_c(const fastopt::Cpp##Options& o) {              \
    fastopt_##name##_options c;                                                \
    FASTOPT_OPTIONS_##name(FASTOPT_C_FROM_REAL, FASTOPT_C_FROM_FLAG) return c; \
  }
FASTOPT_OPTIMIZERS(FASTOPT_C_CONVERT)

}  // namespace

extern "C" {

#define FASTOPT_C_STEP(name, SUFFIX, T)                                                 \
  FASTOPT_C_SIGNATURE(name, SUFFIX, T) {                                                \
    return guarded([&] {                                                                \
      fastopt::name<T>(param, grad, FASTOPT_STATE_ARGS(name) n, step, to_cpp(options)); \
    });                                                                                 \
  }
#define FASTOPT_C_DEFINE(name, Cpp)                                 \
  fastopt_##name##_options fastopt_##name##_default_options(void) { \
    return to_c(fastopt::Cpp##Options());                           \
  }                                                                 \
  FASTOPT_C_STEP(name, f32, float) FASTOPT_C_STEP(name, f64, double)
FASTOPT_OPTIMIZERS(FASTOPT_C_DEFINE)

fastopt_adam_options fastopt_adamw_default_options(void) {
  return to_c(fastopt::to_adam(fastopt::AdamWOptions()));
}

const char* fastopt_last_error(void) { return g_last_error; }

}  // extern "C"
