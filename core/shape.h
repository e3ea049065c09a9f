// Shapes of the network of NETWORK.md: 28x28 input, K 5x5 convolution maps,
// 2x2 max-pooling, 10 sigmoid outputs. Every size in core/ derives from these.
#ifndef CONVNET_CORE_SHAPE_H_
#define CONVNET_CORE_SHAPE_H_

#include <cstddef>

namespace convnet {

inline constexpr int kInputSide = 28;   // a0 is 28x28
inline constexpr int kKernelSide = 5;   // w1[f] is 5x5
inline constexpr int kConvSide = 24;    // z1[f], a1[f] are 24x24
inline constexpr int kPoolSide = 12;    // a2[f] is 12x12
inline constexpr int kClasses = 10;     // z3, a3 have 10 entries

inline constexpr int kPixels = kInputSide * kInputSide;            // 784
inline constexpr int kKernelSize = kKernelSide * kKernelSide;      // 25
inline constexpr int kConvSize = kConvSide * kConvSide;            // 576
inline constexpr int kPoolSize = kPoolSide * kPoolSide;            // 144

inline constexpr int kMinMaps = 1;   // smallest K
inline constexpr int kMaxMaps = 64;  // largest K

// Number of parameters for K maps, in the flat layout of NETWORK.md:
// w1 [K][5][5], b1 [K], w3 [10][K][12][12], b3 [10]. For K = 1: 1476.
constexpr size_t ParameterCount(int k) {
  return static_cast<size_t>(k) * kKernelSize + static_cast<size_t>(k) +
         static_cast<size_t>(kClasses) * k * kPoolSize + kClasses;
}

}  // namespace convnet

#endif  // CONVNET_CORE_SHAPE_H_
