// The reference network: plain loops that read like NETWORK.md, one pair of
// functions per layer (*_forward / *_backward), in float or double. Slow on
// purpose; the fast kernels (kernels.h) are tested against it, and the
// finite-difference tests run it in double.
//
// Shapes: a0 [28][28]; w1 [K][5][5]; b1 [K]; z1, a1, delta1 [K][24][24];
// a2 [K][12][12]; w3 [10][K][12][12]; b3, z3, a3, delta3 [10].
#ifndef CONVNET_CORE_REFERENCE_H_
#define CONVNET_CORE_REFERENCE_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "core/cost.h"
#include "core/shape.h"

namespace convnet {

// z1 = b1 + w1 * a0 (valid 5x5 correlation), a1 = sigma(z1).
template <typename T>
void conv_forward(int k, const T* a0, const T* w1, const T* b1, T* z1, T* a1);

// a2 = 2x2 max of a1; argmax[f][j'][k'] in 0..3 is the window position the
// maximum came from: the FIRST maximum in row-major window order.
template <typename T>
void maxpool_forward(int k, const T* a1, T* a2, uint8_t* argmax);

// z3 = b3 + w3 . a2, a3 = sigma(z3).
template <typename T>
void dense_forward(int k, const T* a2, const T* w3, const T* b3, T* z3, T* a3);

// delta3 = dC/dz3 for the cost (BP1).
template <typename T>
void output_delta(Cost cost, const T* z3, const T* a3, int label, T* delta3);

// dC/db3 += delta3 (BP3), dC/dw3 += a2 delta3 (BP4), and
// da2[f][j'][k'] = sum_l delta3[l] w3[l; f, j', k'] (the sum of BP2).
template <typename T>
void dense_backward(int k, const T* delta3, const T* a2, const T* w3, T* dw3, T* db3, T* da2);

// delta1 = da2 * sigma'(z1) at each window's argmax, 0 elsewhere (BP2).
template <typename T>
void maxpool_backward(int k, const T* da2, const uint8_t* argmax, const T* a1, T* delta1);

// dC/db1 += sum delta1 (BP3, shared bias); dC/dw1 += delta1 (x) a0 (BP4, shared weights).
template <typename T>
void conv_backward(int k, const T* delta1, const T* a0, T* dw1, T* db1);

// C_x of one example from its output layer.
template <typename T>
T example_cost(Cost cost, const T* z3, const T* a3, int label);

// Everything the reference computes for one example.
template <typename T>
struct ReferenceTrace {
  std::vector<T> z1, a1, a2, da2, delta1;
  std::vector<uint8_t> argmax;          // [K][12][12], window position 0..3
  std::array<T, kClasses> z3{}, a3{}, delta3{};
  T cost = 0;
  std::vector<T> gradient;              // dC_x/dparams, flat layout of NETWORK.md
};

// Forward and backward pass of one example with flat parameters `params`
// (ParameterCount(k) values) and input activations a0 (784 values).
template <typename T>
ReferenceTrace<T> ReferenceBackprop(int k, absl::Span<const T> params, const T* a0, int label,
                                    Cost cost);

// Forward pass only: C_x.
template <typename T>
T ReferenceCost(int k, absl::Span<const T> params, const T* a0, int label, Cost cost);

// The [K][24][24] mask with 1 at each window's argmax position.
std::vector<uint8_t> ArgmaxToMask(int k, const uint8_t* argmax);

}  // namespace convnet

#endif  // CONVNET_CORE_REFERENCE_H_
