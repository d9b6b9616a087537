// The avx512 build of the kernels (compile flags set per file in CMakeLists.txt).
#define FASTOPT_ISA_NS avx512
#define FASTOPT_RUN_NAME run_avx512
#include "isa_kernels.inc"
