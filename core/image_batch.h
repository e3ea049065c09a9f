// A read-only view of a batch of 28x28 input images, either uint8 pixels
// (a0 = pixel / 255) or floats already in [0, 1] (a0 = value).
#ifndef CONVNET_CORE_IMAGE_BATCH_H_
#define CONVNET_CORE_IMAGE_BATCH_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/shape.h"

namespace convnet {

class ImageBatch {
 public:
  // `pixels` holds n*784 bytes; `floats` holds n*784 values.
  static ImageBatch FromPixels(absl::Span<const uint8_t> pixels) { return ImageBatch(pixels, {}); }
  static ImageBatch FromFloats(absl::Span<const float> floats) { return ImageBatch({}, floats); }

  // Number of whole images.
  size_t size() const { return (is_float() ? floats_.size() : pixels_.size()) / kPixels; }
  bool is_float() const { return !floats_.empty(); }

  // INVALID_ARGUMENT when the length is not a multiple of 784, or a float is
  // not finite or outside [0, 1] (naming the image, pixel and value).
  absl::Status Validate() const;

  // Writes the 784 input activations a0 of image i into `a0` (row-major 28x28).
  template <typename T>
  void InputActivations(size_t i, T* a0) const;

  absl::Span<const uint8_t> pixels() const { return pixels_; }
  absl::Span<const float> floats() const { return floats_; }

 private:
  ImageBatch(absl::Span<const uint8_t> pixels, absl::Span<const float> floats)
      : pixels_(pixels), floats_(floats) {}

  absl::Span<const uint8_t> pixels_;
  absl::Span<const float> floats_;
};

}  // namespace convnet

#endif  // CONVNET_CORE_IMAGE_BATCH_H_
