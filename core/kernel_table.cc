#include "core/kernel_table.h"

namespace convnet {
namespace {

bool HasX86_64_V3() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
#else
  return false;
#endif
}

const KernelTable* kernels_for_testing = nullptr;

const KernelTable& ProcessorKernels() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const KernelTable* table = HasX86_64_V3() ? &x86_64_v3::kKernelTable : &baseline::kKernelTable;
  return *table;
#else
  return baseline::kKernelTable;
#endif
}

}  // namespace

const KernelTable& Kernels() {
  return kernels_for_testing != nullptr ? *kernels_for_testing : ProcessorKernels();
}

void SetKernelsForTesting(const KernelTable* table) { kernels_for_testing = table; }

const char* KernelsName() { return &Kernels() == &baseline::kKernelTable ? "baseline" : "x86-64-v3"; }

}  // namespace convnet
