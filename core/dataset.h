// Labelled 28x28 images, kept as uint8 pixels, and the loader for a directory
// holding the four standard MNIST files.
#ifndef CONVNET_CORE_DATASET_H_
#define CONVNET_CORE_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/shape.h"

namespace convnet {

struct Dataset {
  std::vector<uint8_t> images;  // size() * 784 pixels, image after image, row-major
  std::vector<uint8_t> labels;  // one label 0..9 per image

  size_t size() const { return labels.size(); }
  absl::Span<const uint8_t> image(size_t i) const {
    return absl::MakeConstSpan(images).subspan(i * kPixels, kPixels);
  }
  // The first `n` examples (all when n >= size()).
  Dataset Prefix(size_t n) const;
};

// A dataset directory: training and test sets.
struct MnistDirectory {
  Dataset train;
  Dataset test;
};

// Standard file names inside a dataset directory. Each may also be present
// with a ".gz" suffix (gzip-compressed); the plain name wins when both exist.
inline constexpr const char* kTrainImagesFile = "train-images-idx3-ubyte";
inline constexpr const char* kTrainLabelsFile = "train-labels-idx1-ubyte";
inline constexpr const char* kTestImagesFile = "t10k-images-idx3-ubyte";
inline constexpr const char* kTestLabelsFile = "t10k-labels-idx1-ubyte";

// OK when `dir` holds the four files (plain or .gz), each readable;
// otherwise NOT_FOUND "missing <file>[.gz], ..." naming every missing file, or
// PERMISSION_DENIED "unreadable <file>, ..." naming the unreadable ones.
absl::Status CheckMnistDirectory(const std::string& dir);

// CheckMnistDirectory(dir).ok().
bool IsMnistDirectory(const std::string& dir);

// Loads the four files of `dir`. NOT_FOUND when a file is missing; the IDX
// reader's errors otherwise (see idx.h), prefixed with the file's path.
absl::StatusOr<MnistDirectory> LoadMnistDirectory(const std::string& dir);

// Builds a dataset from in-memory arrays; INVALID_ARGUMENT when the pixel count
// is not 784 per label or a label is outside 0..9 (naming the index and value).
absl::StatusOr<Dataset> MakeDataset(std::vector<uint8_t> images, std::vector<uint8_t> labels);

}  // namespace convnet

#endif  // CONVNET_CORE_DATASET_H_
