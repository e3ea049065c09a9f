// libFuzzer target: the model-file decoder (core/model_file.h).
//
// The bytes are decoded as they are, which exercises the envelope checks.
// Random mutations almost never keep the CRC-32 right, so the bytes are then
// decoded a second time with the envelope repaired (payload length set to
// what is there, checksum recomputed), which takes the mutations into the
// payload decoder. A file that decodes must encode back to exactly the same
// bytes: the format has one encoding per model.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "core/model_file.h"

namespace {

constexpr size_t kHeaderBytes = 20;   // magic, format version, payload length
constexpr size_t kChecksumBytes = 4;  // CRC-32 of everything before it

void PutLittle(uint64_t value, int n, char* out) {
  for (int i = 0; i < n; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

void DecodeAndCheck(absl::string_view bytes) {
  absl::StatusOr<convnet::Model> model = convnet::DecodeModel(bytes);
  if (model.ok() && convnet::EncodeModel(*model).value() != bytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  DecodeAndCheck(bytes);
  if (size < kHeaderBytes + kChecksumBytes) return 0;

  std::string repaired(bytes);
  const size_t payload = size - kHeaderBytes - kChecksumBytes;
  PutLittle(payload, 8, &repaired[12]);
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(repaired.data()),
                          static_cast<uInt>(kHeaderBytes + payload));
  PutLittle(crc, 4, &repaired[kHeaderBytes + payload]);
  DecodeAndCheck(repaired);
  return 0;
}
