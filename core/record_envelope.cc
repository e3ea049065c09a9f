#include "core/record_envelope.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/crc32.h"

namespace convnet {
namespace {

constexpr size_t kVersionBytes = 4;
constexpr size_t kLengthBytes = 8;
constexpr size_t kChecksumBytes = 4;

}  // namespace

size_t RecordHeaderBytes(const RecordFormat& format) {
  return format.magic.size() + (format.version.has_value() ? kVersionBytes : 0) + kLengthBytes;
}

void AppendLittleEndian(uint64_t value, int count, std::string* out) {
  for (int i = 0; i < count; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

uint64_t LoadLittleEndian(absl::string_view bytes, size_t offset, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

std::string EncodeRecord(const RecordFormat& format, absl::string_view payload) {
  std::string bytes;
  bytes.reserve(RecordHeaderBytes(format) + payload.size() + kChecksumBytes);
  bytes.append(format.magic.data(), format.magic.size());
  if (format.version.has_value()) AppendLittleEndian(*format.version, kVersionBytes, &bytes);
  AppendLittleEndian(payload.size(), kLengthBytes, &bytes);
  bytes.append(payload.data(), payload.size());
  AppendLittleEndian(Crc32(bytes), kChecksumBytes, &bytes);
  return bytes;
}

absl::StatusOr<absl::string_view> DecodeRecord(const RecordFormat& format, absl::string_view bytes) {
  const size_t header_bytes = RecordHeaderBytes(format);
  const uint64_t overhead = header_bytes + kChecksumBytes;
  if (bytes.size() < overhead) {
    return absl::DataLossError(absl::StrCat(format.name, " truncated: ", bytes.size(),
                                            " bytes, less than a header and a checksum (expected at least ",
                                            overhead, " bytes, got ", bytes.size(), ")"));
  }
  const absl::string_view magic = bytes.substr(0, format.magic.size());
  if (magic != format.magic) {
    return absl::DataLossError(absl::StrCat("not a ", format.name, ": wrong magic \"", absl::CHexEscape(magic),
                                            "\", expected \"", format.magic, "\""));
  }
  size_t offset = format.magic.size();
  if (format.version.has_value()) {
    const uint32_t version = static_cast<uint32_t>(LoadLittleEndian(bytes, offset, kVersionBytes));
    if (version != *format.version) {
      return absl::DataLossError(absl::StrCat("unsupported ", format.name, " format version ", version,
                                              " (this build reads version ", *format.version, ")"));
    }
    offset += kVersionBytes;
  }
  const uint64_t payload_length = LoadLittleEndian(bytes, offset, kLengthBytes);
  const uint64_t available = bytes.size() - overhead;
  if (payload_length > available) {
    // Spelled out when the sum would overflow (a corrupt length near 2^64).
    const std::string expected = payload_length <= std::numeric_limits<uint64_t>::max() - overhead
                                     ? absl::StrCat(payload_length + overhead)
                                     : absl::StrCat(payload_length, " + ", overhead);
    return absl::DataLossError(absl::StrCat(format.name, " truncated or too long: its header's payload length ",
                                            payload_length, " means ", expected, " bytes expected, got ",
                                            bytes.size()));
  }
  if (payload_length < available) {
    return absl::DataLossError(absl::StrCat(format.name, " has ", available - payload_length,
                                            " trailing bytes: expected ", payload_length + overhead,
                                            " bytes, got ", bytes.size()));
  }
  const size_t checked_length = header_bytes + payload_length;
  const uint32_t stored_crc = static_cast<uint32_t>(LoadLittleEndian(bytes, checked_length, kChecksumBytes));
  const uint32_t actual_crc = Crc32(bytes.substr(0, checked_length));
  if (stored_crc != actual_crc) {
    return absl::DataLossError(absl::StrFormat("%s checksum mismatch: stored CRC-32 0x%08x, computed 0x%08x",
                                               format.name, stored_crc, actual_crc));
  }
  return bytes.substr(header_bytes, payload_length);
}

}  // namespace convnet
