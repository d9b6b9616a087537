/* Test consumer of the C ABI (tests/test_embedding.py): runs the cases of driver_io.h through
 * fastopt_<name>_f32 / _f64 and fastopt_last_error, every optimizer through the lists of
 * fastopt/optimizers.h.  --self-check: what the file format cannot express; --defaults:
 * every default option struct, one "optimizer option value" line per field. */
#include <fastopt/fastopt.h>
#include <stddef.h>

#include "driver_io.h"

#define SET_REAL(option, def, rule) o.option = case_value(c, #option);
#define SET_FLAG(option, def) o.option = (int)case_value(c, #option);
#define ARRAY(T, x) (T*)case_slot(c, arrays, #x),
#define ARRAY_IF(T, x, option) ARRAY(T, x)
#define CARRIED(T, x, rule, start) case_carried(c, carried, #x),
/* opts: the option list and defaults (adamw: AdamW's), fn: the function (adam for adamw). */
#define CALL(opts, fn, SUFFIX, T)                                               \
  if (strcmp(c->h.opt, #opts) == 0) {                                           \
    fastopt_##fn##_options o = fastopt_##opts##_default_options();              \
    FASTOPT_OPTIONS_##opts(SET_REAL, SET_FLAG) rc = fastopt_##fn##_##SUFFIX(    \
        c->h.has[0] ? (T*)arrays : NULL, (const T*)grad,                        \
        FASTOPT_STATE_##fn(ARRAY, ARRAY_IF, CARRIED, T)(size_t) c->h.n, t, &o); \
  }
#define CALL_f32(name, Cpp) CALL(name, name, f32, float)
#define CALL_f64(name, Cpp) CALL(name, name, f64, double)
#define STEP(SUFFIX, T)                                                                          \
  static int64_t step_##SUFFIX(const test_case* c, unsigned char* arrays,                        \
                               const unsigned char* grad, double* carried, int64_t t, char* msg, \
                               size_t msg_size) {                                                \
    int64_t rc = -1;                                                                             \
    FASTOPT_OPTIMIZERS(CALL_##SUFFIX)                                                            \
    CALL(adamw, adam, SUFFIX, T)                                                                 \
    if (rc == -1) {                                                                              \
      fprintf(stderr, "driver: unknown optimizer %s\n", c->h.opt);                               \
      exit(3);                                                                                   \
    }                                                                                            \
    if (rc != 0) strncpy(msg, fastopt_last_error(), msg_size);                                   \
    return rc;                                                                                   \
  }
STEP(f32, float)
STEP(f64, double)

static int64_t step(const test_case* c, unsigned char* arrays, const unsigned char* grad,
                    double* carried, int64_t t, char* msg, size_t msg_size) {
  return (c->h.elem == 4 ? step_f32 : step_f64)(c, arrays, grad, carried, t, msg, msg_size);
}

#define PRINT_REAL(option, def, rule) printf("%s %s %.17g\n", name, #option, o.option);
#define PRINT_FLAG(option, def) printf("%s %s %d\n", name, #option, o.option);
#define PRINT(opts, fn)                                            \
  {                                                                \
    const char* name = #opts;                                      \
    fastopt_##fn##_options o = fastopt_##opts##_default_options(); \
    FASTOPT_OPTIONS_##fn(PRINT_REAL, PRINT_FLAG)                   \
  }
#define PRINT_DEFAULTS(name, Cpp) PRINT(name, name)

static int defaults(void) {
  FASTOPT_OPTIMIZERS(PRINT_DEFAULTS)
  PRINT(adamw, adam)
  return 0;
}

/* The layout of the structs of the first release (the ABI). */
static int abi_ok(void) {
  return offsetof(fastopt_sgd_options, nesterov) == 32 &&
         offsetof(fastopt_sgd_options, maximize) == 36 && sizeof(fastopt_sgd_options) == 40 &&
         offsetof(fastopt_adagrad_options, eps) == 24 &&
         offsetof(fastopt_adagrad_options, maximize) == 32 &&
         offsetof(fastopt_rmsprop_options, momentum) == 32 &&
         offsetof(fastopt_rmsprop_options, centered) == 40 &&
         offsetof(fastopt_rmsprop_options, maximize) == 44 &&
         offsetof(fastopt_adam_options, weight_decay) == 32 &&
         offsetof(fastopt_adam_options, amsgrad) == 40 &&
         offsetof(fastopt_adam_options, maximize) == 44 &&
         offsetof(fastopt_adam_options, decoupled_weight_decay) == 48 &&
         sizeof(fastopt_adam_options) == 56;
}

/* Overlap refused with nothing written, NULL options are the defaults, the ABI. */
static int self_check(void) {
  double w[8], m[8] = {0}, v[8] = {0}, g[8], w2[8], m2[8] = {0}, v2[8] = {0};
  fastopt_adam_options d = fastopt_adam_default_options();
  int i, bad = 0, rc;
  for (i = 0; i < 8; ++i) {
    w[i] = w2[i] = 1.0;
    g[i] = 0.5;
  }
  rc = fastopt_adam_f64(w, g, w, v, NULL, 8, 1, NULL);
  if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "share memory") == NULL) {
    printf("overlap: rc=%d %s\n", rc, fastopt_last_error());
    ++bad;
  }
  rc = fastopt_nadam_f64(w, g, m, v, w + 7, 8, 1, NULL); /* mu_product inside param */
  if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "mu_product") == NULL) {
    printf("mu_product overlap: rc=%d %s\n", rc, fastopt_last_error());
    ++bad;
  }
  {
    /* ASGD's eta and mu: one double, or inside param; Rprop's two arrays the same */
    double ax[8] = {0}, eta = 0.5, mu = 1.0;
    rc = fastopt_asgd_f64(w, g, ax, &mu, &mu, 8, 2, NULL);
    if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "eta and mu") == NULL) {
      printf("asgd eta == mu: rc=%d %s\n", rc, fastopt_last_error());
      ++bad;
    }
    rc = fastopt_asgd_f64(w, g, ax, w + 5, &mu, 8, 2, NULL);
    if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "share memory") == NULL) {
      printf("asgd eta inside param: rc=%d %s\n", rc, fastopt_last_error());
      ++bad;
    }
    rc = fastopt_rprop_f64(w, g, m, m, 8, 2, NULL);
    if (rc != FASTOPT_INVALID_ARGUMENT || strstr(fastopt_last_error(), "share memory") == NULL) {
      printf("rprop prev == step_size_buffer: rc=%d %s\n", rc, fastopt_last_error());
      ++bad;
    }
    for (i = 0; i < 8; ++i)
      if (ax[i] != 0.0) ++bad;
    if (eta != 0.5 || mu != 1.0) {
      printf("asgd overlap: wrote eta or mu\n");
      ++bad;
    }
  }
  for (i = 0; i < 8; ++i)
    if (w[i] != 1.0 || m[i] != 0.0 || v[i] != 0.0) {
      printf("overlap: wrote\n");
      ++bad;
      break;
    }
  /* NULL options: the defaults */
  if (fastopt_adam_f64(w, g, m, v, NULL, 8, 1, NULL) != 0 ||
      fastopt_adam_f64(w2, g, m2, v2, NULL, 8, 1, &d) != 0 || memcmp(w, w2, sizeof w) != 0) {
    printf("NULL options differ from the defaults\n");
    ++bad;
  }
  if (!abi_ok()) {
    printf("the option structs of the first release changed layout\n");
    ++bad;
  }
  if (!bad) printf("ok\n");
  return bad ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--self-check") == 0) return self_check();
  if (argc == 2 && strcmp(argv[1], "--defaults") == 0) return defaults();
  if (argc != 3) {
    fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  return run_cases(argv[1], argv[2], step);
}
