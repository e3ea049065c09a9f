// The IDX file format of the MNIST database (big-endian header, uint8 data),
// plain or gzip-compressed.
//   images: magic 0x00000803, count, rows (28), columns (28), count*784 bytes
//   labels: magic 0x00000801, count, count bytes, each 0..9
#ifndef CONVNET_CORE_IDX_H_
#define CONVNET_CORE_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet {

inline constexpr uint32_t kIdxImagesMagic = 0x00000803;
inline constexpr uint32_t kIdxLabelsMagic = 0x00000801;

// Parses IDX images from the (already decompressed) bytes. INVALID_ARGUMENT
// with a message naming the offending value for: a short header, a wrong magic,
// dimensions other than 28x28, a body shorter or longer than the header says.
absl::StatusOr<std::vector<uint8_t>> ParseIdxImages(absl::string_view bytes);

// Parses IDX labels. INVALID_ARGUMENT for a short header, wrong magic, wrong
// body length, or a label outside 0..9 (naming its index and value).
absl::StatusOr<std::vector<uint8_t>> ParseIdxLabels(absl::string_view bytes);

// Reads a whole file, gunzipping it when it starts with the gzip magic.
// NOT_FOUND when it does not exist; DATA_LOSS for a corrupt or truncated gzip
// stream; the path is named in every message.
absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path);

// ReadMaybeGzipFile + Parse, with the path prefixed to any error message.
absl::StatusOr<std::vector<uint8_t>> ReadIdxImages(const std::string& path);
absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path);

// Serialises back to IDX (uncompressed); used by tests and tools.
std::string EncodeIdxImages(const std::vector<uint8_t>& images);
std::string EncodeIdxLabels(const std::vector<uint8_t>& labels);

}  // namespace convnet

#endif  // CONVNET_CORE_IDX_H_
