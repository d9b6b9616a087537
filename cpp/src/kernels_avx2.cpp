// The avx2 build of the kernels (compile flags set per file in CMakeLists.txt).
#define FASTOPT_ISA_NS avx2
#define FASTOPT_RUN_NAME run_avx2
#include "isa_kernels.inc"
