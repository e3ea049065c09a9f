// The vector kernels behind kernels.h, one table per instruction set
// (kernel_impl.inc), and the choice of table for this processor. Internal to core/.
#ifndef CONVNET_CORE_KERNEL_TABLE_H_
#define CONVNET_CORE_KERNEL_TABLE_H_

#include <cstdint>

namespace convnet {

struct KernelTable {
  // a0 = pixel / 255 into padded rows, and which columns of each row are
  // not zero (bit c of nonzero_columns[r]).
  void (*pixels_to_padded_rows)(const uint8_t* pixels, float* a0, uint32_t* nonzero_columns);
  // z1 = b1 + w1 * a0 and the maximum z1 of each 2x2 window (max-pooling on
  // z1: sigma is monotonic); nonzero_columns tells which rows and columns of
  // a0 are all zero (they add nothing).
  void (*conv_pool_forward)(int k, const float* a0, const uint32_t* nonzero_columns, const float* w1,
                            const float* b1, float* z1, float* z1_max);
  // a = sigma(z) for n values, n a multiple of 8: a2 = sigma(z1_max) for the
  // K*144 window maxima, or the a3 of several images in Predict.
  void (*activate)(int n, const float* z, float* a);
  // z3 = b3 + w3 . a2 and a3 = sigma(z3), for n = K*144 inputs (z3 only when
  // a3 is null); writes 16 floats to each, z3[10..15] as zeros.
  void (*dense_forward)(int n, const float* a2, const float* w3, const float* b3, float* z3, float* a3);
  // The position (0..3) of each window's maximum: the first maximum of z1,
  // moved to an earlier position whose a1 = sigma(z1) equals a2 (the tie rule).
  void (*pool_argmax)(int k, const float* z1, const float* z1_max, const float* a2, uint8_t* argmax);
  // da2 = sum_l delta3[l] w3[l] (the sum in BP2).
  void (*dense_backward_input)(int n, const float* delta3, const float* w3, float* da2);
  // dC/dw3 += a2_e delta3_e (BP4) for m examples, each element summed in
  // example order; a2[e] points to example e's n values, delta3 [m][16].
  void (*dense_weight_gradients)(int n, int m, const float* const* a2, const float* delta3, float* dw3);
  // delta1 at the argmaxes (BP2), dC/db1 (BP3) and dC/dw1 (BP4); windows
  // whose inputs are all zero (nonzero_columns) add nothing to dC/dw1.
  void (*conv_backward)(int k, const float* a0, const uint32_t* nonzero_columns, const float* a2,
                        const float* da2, const uint8_t* argmax, float* delta1, float* dw1, float* db1);
  // The forward pass of one image already in a0: conv_pool_forward,
  // activate and dense_forward in one call (a3 only when not null).
  void (*forward)(int k, const float* a0, const uint32_t* nonzero_columns, const float* w1, const float* b1,
                  const float* w3, const float* b3, float* z1, float* z1_max, float* a2, float* z3, float* a3);
  // The forward pass up to z3 of `count` images of pixels, one after the
  // other, in one call, stage by stage: pixels_to_padded_rows and
  // conv_pool_forward for each image, activate on all their window maxima,
  // dense_forward for each. z1_max and a2 hold count*K*144 values, z3
  // count*10 (+6 of slack); a0, nonzero_columns and z1 are left as the last
  // image's.
  void (*forward_images)(int k, int count, const uint8_t* pixels, float* a0, uint32_t* nonzero_columns,
                         const float* w1, const float* b1, const float* w3, const float* b3, float* z1,
                         float* z1_max, float* a2, float* z3);
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

// Tests only: makes Kernels() return `table` until called again with nullptr
// (back to this processor's table). Not thread-safe: call it while no kernel runs.
void SetKernelsForTesting(const KernelTable* table);

}  // namespace convnet

#endif  // CONVNET_CORE_KERNEL_TABLE_H_
