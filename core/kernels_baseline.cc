// The vector kernels for any processor of the build's target (SSE2 on x86-64).
#define CONVNET_KERNEL_NS baseline
#include "core/kernel_impl.inc"
