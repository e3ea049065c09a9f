// CRC-32 as zlib computes it (the IEEE 802.3 polynomial, the checksum of gzip
// and PNG): the integrity check that closes a model file (model_file.h) and a
// server job record. One function, so that every file format the project
// writes is checked the same way.
#ifndef CONVNET_CORE_CRC32_H_
#define CONVNET_CORE_CRC32_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace convnet {

// The CRC-32 of `bytes` (zlib's crc32 started from its initial value), for
// any length: inputs above zlib's uInt range are fed to it in pieces, which
// gives the same value as one call would.
uint32_t Crc32(absl::string_view bytes);

}  // namespace convnet

#endif  // CONVNET_CORE_CRC32_H_
