// K maps' values in the flat layout of parameters.h (w1, b1, w3, b3), zeros
// at first, placed so that the w3 block starts on a 64-byte cache line, and
// with it every row of w3 (K*576 bytes apart): the dense layer reads w3 in
// 32-byte vectors, and at malloc's placement (16 bytes) half of them crossed a
// line. (Parameters' storage. Gradient sums placed the same way were no faster:
// training 0.98-1.00x; their dC/dw3 stays where malloc puts it.)
#ifndef CONVNET_CORE_FLAT_BUFFER_H_
#define CONVNET_CORE_FLAT_BUFFER_H_

#include <cstddef>

#include "absl/types/span.h"
#include "core/aligned_vector.h"
#include "core/shape.h"

namespace convnet {

class FlatBuffer {
 public:
  explicit FlatBuffer(int k) : k_(k), storage_(Padding(k) + ParameterCount(k), 0.0f) {}

  int k() const { return k_; }
  size_t size() const { return ParameterCount(k_); }
  float* data() { return storage_.data() + Padding(k_); }
  const float* data() const { return storage_.data() + Padding(k_); }
  absl::Span<float> span() { return absl::MakeSpan(data(), size()); }
  absl::Span<const float> span() const { return absl::MakeConstSpan(data(), size()); }

 private:
  // Floats before w1, so that w3 (after K*25 weights and K biases) lands on a line.
  static size_t Padding(int k) {
    constexpr size_t kFloatsPerLine = kCacheLine / sizeof(float);
    const size_t w3_offset = static_cast<size_t>(k) * (kKernelSize + 1);
    return (kFloatsPerLine - w3_offset % kFloatsPerLine) % kFloatsPerLine;
  }

  int k_;
  AlignedVector<float> storage_;  // Padding(k) floats, then the flat layout
};

}  // namespace convnet

#endif  // CONVNET_CORE_FLAT_BUFFER_H_
