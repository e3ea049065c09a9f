// The input images of predict, gradients and train: a range of an IDX file
// (--images, --labels, --index, --count) or PGM files named on the command line.
#ifndef CONVNET_CLIENT_IMAGES_H_
#define CONVNET_CLIENT_IMAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnet/v1/convnet.pb.h"

namespace convnet::client {

struct InputImage {
  // Where it came from, for display: "t10k-images-idx3-ubyte.gz[17]" or a path.
  std::string source;
  // 784 pixels, 0..255, row-major.
  std::vector<uint8_t> pixels;
  // The digit shown, when known (from --labels).
  std::optional<int> label;
};

enum class LabelsNeeded { kOptional, kRequired };

// Loads the images named by the flags, or the PGM files in `pgm_paths`
// (exactly one of the two sources). With LabelsNeeded::kRequired, --labels
// must be set (PGM files carry no label). INVALID_ARGUMENT for a bad
// combination or range (naming the flag and the value); the readers' errors
// (NOT_FOUND, DATA_LOSS, INVALID_ARGUMENT) for unreadable files.
absl::StatusOr<std::vector<InputImage>> LoadInputImages(const std::vector<std::string>& pgm_paths,
                                                        LabelsNeeded labels_needed);

// The image as it travels on the wire (784 uint8 pixels).
convnet::v1::Image ToProtoImage(const InputImage& image);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_IMAGES_H_
