// The vector kernels behind kernels.h, one table per instruction set
// (kernel_impl.inc), and the choice of table for this processor. Internal to core/.
#ifndef CONVNET_CORE_KERNEL_TABLE_H_
#define CONVNET_CORE_KERNEL_TABLE_H_

#include <cstdint>

namespace convnet {

struct KernelTable {
  // a0 = pixel / 255 into padded rows, and which rows are all zero.
  void (*pixels_to_padded_rows)(const uint8_t* pixels, float* a0, uint8_t* row_nonzero);
  // z1 = b1 + w1 * a0 and its 2x2 max-pool on z1 (first maximum of each window),
  // with the z1 of the window positions before each maximum (window; -inf for the others).
  void (*conv_pool_forward)(int k, const float* a0, const uint8_t* row_nonzero, const float* w1,
                            const float* b1, float* z1, float* z1_max, uint8_t* argmax, float* window);
  // a2 = sigma(z1_max), and the tie rule on a1 (argmax moves to an earlier equal a1).
  void (*activate_maxima)(int k, const float* z1_max, const float* window, float* a2, uint8_t* argmax);
  // z3 = b3 + w3 . a2 and a3 = sigma(z3), for n = K*144 inputs.
  void (*dense_forward)(int n, const float* a2, const float* w3, const float* b3, float* z3, float* a3);
  // dC/dw3 += a2 delta3 (BP4) and da2 = sum_l delta3[l] w3[l] (the sum in BP2).
  void (*dense_backward)(int n, const float* delta3, const float* a2, const float* w3, float* dw3,
                         float* da2);
  // delta1 at the argmaxes (BP2), dC/db1 (BP3) and dC/dw1 (BP4).
  void (*conv_backward)(int k, const float* a0, const float* a2, const float* da2,
                        const uint8_t* argmax, float* delta1, float* dw1, float* db1);
};

namespace baseline {
extern const KernelTable kKernelTable;
}
#if defined(__x86_64__) && defined(__GNUC__)
namespace x86_64_v3 {
extern const KernelTable kKernelTable;
}
#endif

// The table for this processor: x86-64-v3 (AVX2, FMA) where it has them,
// baseline otherwise. Chosen once.
const KernelTable& Kernels();

// "x86-64-v3" or "baseline", for logs and benchmark reports.
const char* KernelsName();

}  // namespace convnet

#endif  // CONVNET_CORE_KERNEL_TABLE_H_
