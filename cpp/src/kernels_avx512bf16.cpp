// The avx512bf16 build of the kernels: the avx512 build's flags plus -mavx512bf16, for
// bfloat16's conversion in vectors (kernels.hpp, Vec<bf16>); compile flags in CMakeLists.txt.
#define FASTOPT_ISA_NS avx512bf16
#define FASTOPT_RUN_NAME run_avx512bf16
#include "isa_kernels.inc"
