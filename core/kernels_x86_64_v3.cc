// The vector kernels for x86-64-v3 (AVX2, FMA); this file is built with
// -march=x86-64-v3 and only called where the processor has those (kernel_table.cc).
#define CONVNET_KERNEL_NS x86_64_v3
#include "core/kernel_impl.inc"
