#include "core/parameters.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "core/random.h"

namespace convnet {

absl::Status ValidateFeatureMaps(int64_t k) {
  if (k < kMinMaps || k > kMaxMaps) {
    return absl::InvalidArgumentError(
        absl::StrFormat("feature_maps must be in %d..%d, got %d", kMinMaps, kMaxMaps, k));
  }
  return absl::OkStatus();
}

std::optional<size_t> FindNonFinite(absl::Span<const float> values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return i;
  }
  return std::nullopt;
}

absl::StatusOr<Parameters> Parameters::Zeros(int k) {
  if (absl::Status s = ValidateFeatureMaps(k); !s.ok()) return s;
  return Parameters(k);
}

absl::StatusOr<Parameters> Parameters::Initialize(int k, uint64_t seed) {
  if (absl::Status s = ValidateFeatureMaps(k); !s.ok()) return s;
  Parameters p(k);
  Random random(seed);
  // Weights ~ N(0, 1/sqrt(n_in)), biases ~ N(0, 1), drawn in flat-layout order.
  const double w1_scale = 1.0 / std::sqrt(static_cast<double>(kKernelSize));
  const double w3_scale = 1.0 / std::sqrt(static_cast<double>(kPoolSize) * k);
  for (int i = 0; i < k * kKernelSize; ++i) p.w1()[i] = static_cast<float>(random.Normal() * w1_scale);
  for (int i = 0; i < k; ++i) p.b1()[i] = static_cast<float>(random.Normal());
  for (int i = 0; i < kClasses * k * kPoolSize; ++i) p.w3()[i] = static_cast<float>(random.Normal() * w3_scale);
  for (int i = 0; i < kClasses; ++i) p.b3()[i] = static_cast<float>(random.Normal());
  return p;
}

absl::StatusOr<Parameters> Parameters::FromFlat(int k, absl::Span<const float> flat) {
  if (absl::Status s = ValidateFeatureMaps(k); !s.ok()) return s;
  if (flat.size() != ParameterCount(k)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parameter vector for K = %d must have %d values (w1 %d, b1 %d, w3 %d, b3 %d), got %d", k,
        ParameterCount(k), k * kKernelSize, k, kClasses * k * kPoolSize, kClasses, flat.size()));
  }
  if (const std::optional<size_t> i = FindNonFinite(flat)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("parameter %d is not finite (%f)", *i, flat[*i]));
  }
  Parameters p(k);
  std::copy(flat.begin(), flat.end(), p.mutable_flat().begin());
  return p;
}

}  // namespace convnet
