// The envelope around every binary file the project writes (the model file,
// a server job record): a magic, an optional format version, the payload's
// length, the payload and a CRC-32, all integers little-endian:
//
//   magic (its size) | [format version u32] | payload length u64 | payload |
//   crc32 u32 of everything before it (zlib's CRC-32, core/crc32.h)
//
// One encoder and one decoder, so that every file is framed and checked the
// same way; what the payload holds is each format's own business. The
// little-endian helpers below are the one codec of those formats' integers.
#ifndef CONVNET_CORE_RECORD_ENVELOPE_H_
#define CONVNET_CORE_RECORD_ENVELOPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet {

// What distinguishes one format from another.
struct RecordFormat {
  // Starts every error message: "model", "job record".
  absl::string_view name;
  // The first bytes of every record.
  absl::string_view magic;
  // When set, a u32 after the magic that must equal it.
  std::optional<uint32_t> version;
};

// Bytes before the payload: the magic, the version (if any), the length.
size_t RecordHeaderBytes(const RecordFormat& format);

// The record of `payload` in `format`.
std::string EncodeRecord(const RecordFormat& format, absl::string_view payload);

// The payload of `bytes` (a view into it), after checking in this order: the
// size (at least a header and a checksum), the magic, the version, that the
// length matches the bytes present exactly and the checksum. DATA_LOSS
// starting with format.name otherwise, naming what is wrong with the values
// involved: "truncated" (the expected and actual sizes), "wrong magic",
// "unsupported <name> format version <v>", "<n> trailing bytes" or
// "checksum mismatch" (both checksums).
absl::StatusOr<absl::string_view> DecodeRecord(const RecordFormat& format, absl::string_view bytes);

// Appends the `count` low bytes of `value`, least significant first.
void AppendLittleEndian(uint64_t value, int count, std::string* out);

// The `count`-byte little-endian integer at `bytes[offset]`; the caller
// guarantees that those bytes exist.
uint64_t LoadLittleEndian(absl::string_view bytes, size_t offset, int count);

}  // namespace convnet

#endif  // CONVNET_CORE_RECORD_ENVELOPE_H_
