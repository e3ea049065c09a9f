#include "core/image_batch.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace convnet {
namespace {

// a0 = pixel / 255, correctly rounded, for every byte value.
struct PixelTable {
  float value[256];
  constexpr PixelTable() : value() {
    for (int p = 0; p < 256; ++p) value[p] = static_cast<float>(p) / 255.0f;
  }
};
constexpr PixelTable kPixelToA0;

}  // namespace

absl::Status ImageBatch::Validate() const {
  const size_t length = is_float() ? floats_.size() : pixels_.size();
  if (length % kPixels != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "an image has %d pixels (28x28); got %d values, not a multiple of %d", kPixels, length, kPixels));
  }
  for (size_t i = 0; i < floats_.size(); ++i) {
    const float v = floats_[i];
    if (!std::isfinite(v) || v < 0.0f || v > 1.0f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "image %d pixel %d must be a finite value in [0, 1], got %g", i / kPixels, i % kPixels, v));
    }
  }
  return absl::OkStatus();
}

template <>
void ImageBatch::InputActivations<float>(size_t i, float* a0) const {
  if (is_float()) {
    const float* src = floats_.data() + i * kPixels;
    for (int p = 0; p < kPixels; ++p) a0[p] = src[p];
  } else {
    const uint8_t* src = pixels_.data() + i * kPixels;
    for (int p = 0; p < kPixels; ++p) a0[p] = kPixelToA0.value[src[p]];
  }
}

template <>
void ImageBatch::InputActivations<double>(size_t i, double* a0) const {
  if (is_float()) {
    const float* src = floats_.data() + i * kPixels;
    for (int p = 0; p < kPixels; ++p) a0[p] = src[p];
  } else {
    const uint8_t* src = pixels_.data() + i * kPixels;
    for (int p = 0; p < kPixels; ++p) a0[p] = static_cast<double>(src[p]) / 255.0;
  }
}

}  // namespace convnet
