#include "core/idx.h"

#include <zlib.h>

#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/file_util.h"
#include "core/shape.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

constexpr size_t kImagesHeaderBytes = 16;  // magic, count, rows, columns
constexpr size_t kLabelsHeaderBytes = 8;   // magic, count
constexpr size_t kReadChunk = 1 << 16;

uint32_t ReadBigEndian32(absl::string_view bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void AppendBigEndian32(uint32_t value, std::string* out) {
  out->push_back(static_cast<char>(value >> 24));
  out->push_back(static_cast<char>(value >> 16));
  out->push_back(static_cast<char>(value >> 8));
  out->push_back(static_cast<char>(value));
}

std::string Hex32(uint32_t value) { return absl::StrFormat("0x%08x", value); }

// Checks that the body after the header holds exactly `count` records of
// `record_bytes` bytes each; `kind` names the records ("images", "labels").
absl::Status CheckBodyLength(absl::string_view kind, uint32_t count, uint64_t record_bytes,
                             uint64_t body_bytes) {
  const uint64_t expected = uint64_t{count} * record_bytes;
  if (body_bytes < expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX ", kind, " body is truncated: the header says ", count, " ", kind, " (", expected,
        " bytes) but only ", body_bytes, " bytes follow the header"));
  }
  if (body_bytes > expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IDX ", kind, " body has ", body_bytes - expected, " trailing bytes: the header says ",
        count, " ", kind, " (", expected, " bytes) but ", body_bytes,
        " bytes follow the header"));
  }
  return absl::OkStatus();
}

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

bool HasGzipMagic(absl::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

struct InflateEnder {
  void operator()(z_stream* stream) const { inflateEnd(stream); }
};

// Decompresses a gzip file: one member or several concatenated ones (as
// `gzip` writes and reads them). Anything that is not a whole, valid member
// (a cut-off stream, bad deflate data, a CRC or length mismatch in a trailer,
// garbage after the last member) is DATA_LOSS.
absl::StatusOr<std::string> Gunzip(const std::string& path, absl::string_view compressed) {
  z_stream stream;
  std::memset(&stream, 0, sizeof stream);
  // 16 + MAX_WBITS: expect a gzip wrapper and check its CRC-32 and length.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    return absl::InternalError(absl::StrCat(path, ": cannot initialise zlib"));
  }
  std::unique_ptr<z_stream, InflateEnder> ender(&stream);

  std::string out;
  char buffer[kReadChunk];
  size_t consumed = 0;  // input bytes handed to zlib so far
  while (true) {
    // avail_in is 32 bits; feed very large inputs in slices.
    if (stream.avail_in == 0 && consumed < compressed.size()) {
      const size_t slice = std::min<size_t>(compressed.size() - consumed, 1u << 30);
      stream.next_in =
          reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + consumed));
      stream.avail_in = static_cast<uInt>(slice);
      consumed += slice;
    }
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    const int rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - stream.avail_out);

    if (rc == Z_STREAM_END) {
      const size_t remaining = stream.avail_in + (compressed.size() - consumed);
      if (remaining == 0) return out;
      const absl::string_view rest = compressed.substr(compressed.size() - remaining);
      if (!HasGzipMagic(rest)) {
        return absl::DataLossError(absl::StrCat(path, ": corrupt gzip stream: ", remaining,
                                                " bytes of garbage after the compressed data"));
      }
      inflateReset(&stream);  // next member; next_in/avail_in stay where they are
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && stream.avail_in == 0 && consumed == compressed.size()) {
      return absl::DataLossError(absl::StrCat(
          path, ": truncated gzip stream: the compressed data ends after ", compressed.size(),
          " bytes, before the end of the stream"));
    }
    if (rc == Z_MEM_ERROR) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory while gunzipping"));
    }
    return absl::DataLossError(absl::StrCat(path, ": corrupt gzip stream (zlib error ", rc,
                                            stream.msg != nullptr ? ": " : "",
                                            stream.msg != nullptr ? stream.msg : "", ")"));
  }
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ParseIdxImages(absl::string_view bytes) {
  if (bytes.size() < kImagesHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("IDX images header is truncated: it needs ",
                                                   kImagesHeaderBytes, " bytes, got ",
                                                   bytes.size()));
  }
  const uint32_t magic = ReadBigEndian32(bytes, 0);
  if (magic != kIdxImagesMagic) {
    return absl::InvalidArgumentError(absl::StrCat("IDX images magic must be ",
                                                   Hex32(kIdxImagesMagic), ", got ", Hex32(magic)));
  }
  const uint32_t count = ReadBigEndian32(bytes, 4);
  const uint32_t rows = ReadBigEndian32(bytes, 8);
  const uint32_t columns = ReadBigEndian32(bytes, 12);
  if (rows != kInputSide || columns != kInputSide) {
    return absl::InvalidArgumentError(absl::StrCat("IDX images must be ", kInputSide, "x",
                                                   kInputSide, ", got ", rows, "x", columns));
  }
  const absl::string_view body = bytes.substr(kImagesHeaderBytes);
  CONVNET_RETURN_IF_ERROR(CheckBodyLength("images", count, kPixels, body.size()));
  return std::vector<uint8_t>(body.begin(), body.end());
}

absl::StatusOr<std::vector<uint8_t>> ParseIdxLabels(absl::string_view bytes) {
  if (bytes.size() < kLabelsHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("IDX labels header is truncated: it needs ",
                                                   kLabelsHeaderBytes, " bytes, got ",
                                                   bytes.size()));
  }
  const uint32_t magic = ReadBigEndian32(bytes, 0);
  if (magic != kIdxLabelsMagic) {
    return absl::InvalidArgumentError(absl::StrCat("IDX labels magic must be ",
                                                   Hex32(kIdxLabelsMagic), ", got ", Hex32(magic)));
  }
  const uint32_t count = ReadBigEndian32(bytes, 4);
  const absl::string_view body = bytes.substr(kLabelsHeaderBytes);
  CONVNET_RETURN_IF_ERROR(CheckBodyLength("labels", count, 1, body.size()));
  std::vector<uint8_t> labels(body.begin(), body.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kClasses) {
      return absl::InvalidArgumentError(absl::StrCat("IDX label at index ", i, " is ",
                                                     int{labels[i]}, ", outside 0..", kClasses - 1));
    }
  }
  return labels;
}

absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok() || !HasGzipMagic(*bytes)) return bytes;
  return Gunzip(path, *bytes);
}

absl::StatusOr<std::vector<uint8_t>> ReadIdxImages(const std::string& path) {
  CONVNET_ASSIGN_OR_RETURN(std::string bytes, ReadMaybeGzipFile(path));
  absl::StatusOr<std::vector<uint8_t>> images = ParseIdxImages(bytes);
  if (!images.ok()) return WithPath(path, images.status());
  return images;
}

absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path) {
  CONVNET_ASSIGN_OR_RETURN(std::string bytes, ReadMaybeGzipFile(path));
  absl::StatusOr<std::vector<uint8_t>> labels = ParseIdxLabels(bytes);
  if (!labels.ok()) return WithPath(path, labels.status());
  return labels;
}

// The count is the number of whole images; a length that is not a multiple of
// 784 is written out as is, giving a file that ParseIdxImages rejects (useful
// for tests of that rejection).
std::string EncodeIdxImages(const std::vector<uint8_t>& images) {
  std::string out;
  out.reserve(kImagesHeaderBytes + images.size());
  AppendBigEndian32(kIdxImagesMagic, &out);
  AppendBigEndian32(static_cast<uint32_t>(images.size() / kPixels), &out);
  AppendBigEndian32(kInputSide, &out);
  AppendBigEndian32(kInputSide, &out);
  out.append(images.begin(), images.end());
  return out;
}

std::string EncodeIdxLabels(const std::vector<uint8_t>& labels) {
  std::string out;
  out.reserve(kLabelsHeaderBytes + labels.size());
  AppendBigEndian32(kIdxLabelsMagic, &out);
  AppendBigEndian32(static_cast<uint32_t>(labels.size()), &out);
  out.append(labels.begin(), labels.end());
  return out;
}

}  // namespace convnet
