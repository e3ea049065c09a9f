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

}  // namespace

const KernelTable& Kernels() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const KernelTable* table = HasX86_64_V3() ? &x86_64_v3::kKernelTable : &baseline::kKernelTable;
  return *table;
#else
  return baseline::kKernelTable;
#endif
}

const char* KernelsName() { return &Kernels() == &baseline::kKernelTable ? "baseline" : "x86-64-v3"; }

}  // namespace convnet
