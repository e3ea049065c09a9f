// The parameters of the network for K feature maps, stored flat in the layout
// of NETWORK.md ("Parameter layout"): w1 [K][5][5], b1 [K], w3 [10][K][12][12],
// b3 [10], each row-major. This flat vector is what goes on the wire and to disk.
// In memory it follows a few floats of padding in cache-line-aligned storage,
// so that w3 starts on a 64-byte line, and with it every row of w3 (K*576
// bytes apart): the dense layer reads w3 in 32-byte vectors, and at malloc's
// placement half of them crossed a line. Gradient sums stay where malloc puts
// them: aligning them does not speed training (docs/BENCHMARKS.md, "Code and
// data alignment").
#ifndef CONVNET_CORE_PARAMETERS_H_
#define CONVNET_CORE_PARAMETERS_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/aligned_vector.h"
#include "core/shape.h"

namespace convnet {

class Parameters {
 public:
  // All-zero parameters for K maps. Returns INVALID_ARGUMENT when K is outside
  // [kMinMaps, kMaxMaps].
  static absl::StatusOr<Parameters> Zeros(int k);

  // The default initialisation of NETWORK.md: weights ~ N(0, 1/sqrt(n_in))
  // (n_in = 25 for w1, 144*K for w3), biases ~ N(0, 1). The same (k, seed)
  // gives bit-identical parameters on every machine.
  static absl::StatusOr<Parameters> Initialize(int k, uint64_t seed);

  // Copies a flat vector in the layout above. INVALID_ARGUMENT when K is out of
  // range, the length is not ParameterCount(k), or a value is not finite.
  static absl::StatusOr<Parameters> FromFlat(int k, absl::Span<const float> flat);

  int k() const { return k_; }
  size_t size() const { return ParameterCount(k_); }

  absl::Span<const float> flat() const { return absl::MakeConstSpan(storage_.data() + Padding(k_), size()); }
  absl::Span<float> mutable_flat() { return absl::MakeSpan(storage_.data() + Padding(k_), size()); }

  // Views of each block. w1: [K][5][5]; b1: [K]; w3: [10][K][12][12]; b3: [10].
  const float* w1() const { return flat().data(); }
  const float* b1() const { return w1() + k_ * kKernelSize; }
  const float* w3() const { return b1() + k_; }
  const float* b3() const { return w3() + kClasses * k_ * kPoolSize; }
  float* w1() { return mutable_flat().data(); }
  float* b1() { return w1() + k_ * kKernelSize; }
  float* w3() { return b1() + k_; }
  float* b3() { return w3() + kClasses * k_ * kPoolSize; }

  // Offsets of the blocks inside flat(); useful for gradients in the same layout.
  static size_t W1Offset(int) { return 0; }
  static size_t B1Offset(int k) { return static_cast<size_t>(k) * kKernelSize; }
  static size_t W3Offset(int k) { return B1Offset(k) + k; }
  static size_t B3Offset(int k) { return W3Offset(k) + static_cast<size_t>(kClasses) * k * kPoolSize; }

  friend bool operator==(const Parameters& a, const Parameters& b) {
    return a.k_ == b.k_ && std::equal(a.flat().begin(), a.flat().end(), b.flat().begin());
  }

 private:
  // Zeros for K maps (K already validated).
  explicit Parameters(int k) : k_(k), storage_(Padding(k) + ParameterCount(k), 0.0f) {}

  // Floats before w1 in storage_, so that w3 lands on a cache line.
  static size_t Padding(int k) {
    constexpr size_t kFloatsPerLine = kCacheLine / sizeof(float);
    return (kFloatsPerLine - W3Offset(k) % kFloatsPerLine) % kFloatsPerLine;
  }

  int k_;
  AlignedVector<float> storage_;  // Padding(k) floats, then flat()
};

// The one check of K, the number of feature maps: OK when kMinMaps <= k <=
// kMaxMaps; otherwise INVALID_ARGUMENT "feature_maps must be in 1..64, got <k>"
// (callers prefix the field's path or wrap the code).
absl::Status ValidateFeatureMaps(int64_t k);

// The index of the first value that is not finite (NaN or infinite), or
// nullopt when all are finite.
std::optional<size_t> FindNonFinite(absl::Span<const float> values);

}  // namespace convnet

#endif  // CONVNET_CORE_PARAMETERS_H_
