// The generic build of the kernels (compile flags set per file in CMakeLists.txt).
#define FASTOPT_ISA_NS generic
#define FASTOPT_RUN_NAME run_generic
#include "isa_kernels.inc"
