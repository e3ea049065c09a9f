// The model file format (see model_file.h for the envelope).
//
// Every integer is little-endian; floats and doubles are their IEEE-754 bit
// patterns stored as u32 / u64. Signed integers are two's complement.
//
//   offset  size  field
//   0       8     magic "CNVNMODL"
//   8       4     format version (u32), kModelFormatVersion = 1
//   12      8     payload length P (u64)
//   20      P     payload, below
//   20+P    4     CRC-32 (zlib's crc32) of bytes [0, 20+P)
//
// Payload, format version 1:
//   K                               u32, 1..64
//   parameter count N               u64, must equal ParameterCount(K)
//   parameters                      N x f32, flat layout of NETWORK.md; all finite
//   trained                         u8, 0 or 1
//   options.epochs                  i32
//   options.batch_size              i32
//   options.learning_rate           f64
//   options.l2                      f64
//   options.cost                    u32, 0 = quadratic, 1 = cross_entropy
//   options.seed                    u64
//   options.progress_every          i32
//   train_dataset                   string
//   train_examples                  i64
//   init_from                       string
//   init_seed                       u64
//   epochs                          u32 count E, then E records of 44 bytes:
//                                     epoch i32, train_cost f64, test_accuracy f64,
//                                     test_cost f64, test_examples i64, seconds f64
//   created_unix_ms                 i64
//   train_started_unix_ms           i64
//   train_finished_unix_ms          i64
// where a string is a u32 byte length followed by that many bytes (no
// terminator). The payload must be consumed exactly: bytes left over after the
// last field are DATA_LOSS, like any other inconsistency.
#include "core/model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/crc32.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4);
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8);
// TrainOptions and EpochMetrics hold their counts as int; stored as i32.
static_assert(std::is_same_v<int, int32_t>);

constexpr absl::string_view kMagic("CNVNMODL", 8);
constexpr size_t kHeaderBytes = 8 + 4 + 8;  // magic, version, payload length
constexpr size_t kChecksumBytes = 4;
constexpr size_t kEpochRecordBytes = 4 + 8 + 8 + 8 + 8 + 8;

// ---------------------------------------------------------------- encoding

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void F32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    U32(bits);
  }
  void F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    U64(bits);
  }
  // Metadata strings are short; one longer than 4 GiB would be cut to fit its
  // u32 length rather than make the file inconsistent.
  void String(absl::string_view s) {
    s = s.substr(0, std::numeric_limits<uint32_t>::max());
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void Bytes(absl::string_view s) { out_.append(s.data(), s.size()); }

  std::string& str() { return out_; }

 private:
  std::string out_;
};

std::string EncodePayload(const Model& model) {
  Writer w;
  const Parameters& params = model.parameters;
  w.U32(static_cast<uint32_t>(params.k()));
  w.U64(params.flat().size());
  for (float v : params.flat()) w.F32(v);

  const ModelMetadata& m = model.metadata;
  w.U8(m.trained ? 1 : 0);
  w.I32(m.options.epochs);
  w.I32(m.options.batch_size);
  w.F64(m.options.learning_rate);
  w.F64(m.options.l2);
  w.U32(static_cast<uint32_t>(m.options.cost));
  w.U64(m.options.seed);
  w.I32(m.options.progress_every);
  w.String(m.train_dataset);
  w.I64(m.train_examples);
  w.String(m.init_from);
  w.U64(m.init_seed);
  w.U32(static_cast<uint32_t>(m.epochs.size()));
  for (const EpochMetrics& e : m.epochs) {
    w.I32(e.epoch);
    w.F64(e.train_cost);
    w.F64(e.test_accuracy);
    w.F64(e.test_cost);
    w.I64(e.test_examples);
    w.F64(e.seconds);
  }
  w.I64(m.created_unix_ms);
  w.I64(m.train_started_unix_ms);
  w.I64(m.train_finished_unix_ms);
  return std::move(w.str());
}

// ---------------------------------------------------------------- decoding

// Reads fields off the front of the payload; every read is bounds-checked and
// fails with DATA_LOSS naming the field, its offset and what is left.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }

  absl::Status U8(absl::string_view field, uint8_t* v) {
    CONVNET_RETURN_IF_ERROR(Need(field, 1));
    *v = static_cast<uint8_t>(bytes_[offset_++]);
    return absl::OkStatus();
  }
  absl::Status U32(absl::string_view field, uint32_t* v) {
    CONVNET_RETURN_IF_ERROR(Need(field, 4));
    *v = static_cast<uint32_t>(Little(4));
    return absl::OkStatus();
  }
  absl::Status U64(absl::string_view field, uint64_t* v) {
    CONVNET_RETURN_IF_ERROR(Need(field, 8));
    *v = Little(8);
    return absl::OkStatus();
  }
  absl::Status I32(absl::string_view field, int32_t* v) {
    uint32_t bits = 0;
    CONVNET_RETURN_IF_ERROR(U32(field, &bits));
    *v = static_cast<int32_t>(bits);
    return absl::OkStatus();
  }
  absl::Status I64(absl::string_view field, int64_t* v) {
    uint64_t bits = 0;
    CONVNET_RETURN_IF_ERROR(U64(field, &bits));
    *v = static_cast<int64_t>(bits);
    return absl::OkStatus();
  }
  absl::Status F32(absl::string_view field, float* v) {
    uint32_t bits = 0;
    CONVNET_RETURN_IF_ERROR(U32(field, &bits));
    std::memcpy(v, &bits, sizeof bits);
    return absl::OkStatus();
  }
  absl::Status F64(absl::string_view field, double* v) {
    uint64_t bits = 0;
    CONVNET_RETURN_IF_ERROR(U64(field, &bits));
    std::memcpy(v, &bits, sizeof bits);
    return absl::OkStatus();
  }
  absl::Status String(absl::string_view field, std::string* v) {
    uint32_t length = 0;
    CONVNET_RETURN_IF_ERROR(U32(absl::StrCat(field, " length"), &length));
    if (length > remaining()) {
      return absl::DataLossError(absl::StrCat("string ", field, " of ", length,
                                              " bytes runs past the end of the payload (",
                                              remaining(), " bytes left at payload offset ",
                                              offset_, ")"));
    }
    v->assign(bytes_.data() + offset_, length);
    offset_ += length;
    return absl::OkStatus();
  }

 private:
  absl::Status Need(absl::string_view field, size_t n) const {
    if (n <= remaining()) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("payload truncated: ", field, " needs ", n,
                                            " bytes at payload offset ", offset_, ", only ",
                                            remaining(), " left"));
  }
  uint64_t Little(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      v |= uint64_t{static_cast<unsigned char>(bytes_[offset_ + i])} << (8 * i);
    }
    offset_ += n;
    return v;
  }

  absl::string_view bytes_;
  size_t offset_ = 0;
};

uint64_t LittleAt(absl::string_view bytes, size_t offset, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return v;
}

absl::StatusOr<Parameters> DecodeParameters(Reader& r) {
  uint32_t k = 0;
  CONVNET_RETURN_IF_ERROR(r.U32("K", &k));
  if (absl::Status valid = ValidateFeatureMaps(k); !valid.ok()) {
    return absl::DataLossError(absl::StrCat("K: ", valid.message()));
  }
  uint64_t count = 0;
  CONVNET_RETURN_IF_ERROR(r.U64("parameter count", &count));
  const size_t expected = ParameterCount(static_cast<int>(k));
  if (count != expected) {
    return absl::DataLossError(absl::StrCat("parameter count ", count, " does not match K = ", k,
                                            " (expected ", expected, ")"));
  }
  // count is bounded by ParameterCount(kMaxMaps) here, so this cannot overflow.
  if (count * sizeof(float) > r.remaining()) {
    return absl::DataLossError(absl::StrCat(
        count, " parameters (", count * sizeof(float), " bytes) run past the end of the payload (",
        r.remaining(), " bytes left at payload offset ", r.offset(), ")"));
  }
  std::vector<float> flat(count);
  for (size_t i = 0; i < count; ++i) {
    CONVNET_RETURN_IF_ERROR(r.F32("parameter", &flat[i]));
    if (!std::isfinite(flat[i])) {
      return absl::DataLossError(
          absl::StrCat("parameter ", i, " is not finite: ", absl::StrFormat("%g", flat[i])));
    }
  }
  absl::StatusOr<Parameters> params = Parameters::FromFlat(static_cast<int>(k), flat);
  if (!params.ok()) {
    return absl::DataLossError(absl::StrCat("invalid parameters: ", params.status().message()));
  }
  return params;
}

absl::Status DecodeMetadata(Reader& r, ModelMetadata* m) {
  uint8_t trained = 0;
  CONVNET_RETURN_IF_ERROR(r.U8("trained flag", &trained));
  if (trained > 1) {
    return absl::DataLossError(absl::StrCat("trained flag must be 0 or 1, got ", int{trained}));
  }
  m->trained = trained == 1;

  TrainOptions& o = m->options;
  CONVNET_RETURN_IF_ERROR(r.I32("options.epochs", &o.epochs));
  CONVNET_RETURN_IF_ERROR(r.I32("options.batch_size", &o.batch_size));
  CONVNET_RETURN_IF_ERROR(r.F64("options.learning_rate", &o.learning_rate));
  CONVNET_RETURN_IF_ERROR(r.F64("options.l2", &o.l2));
  uint32_t cost = 0;
  CONVNET_RETURN_IF_ERROR(r.U32("options.cost", &cost));
  if (cost != static_cast<uint32_t>(Cost::kQuadratic) &&
      cost != static_cast<uint32_t>(Cost::kCrossEntropy)) {
    return absl::DataLossError(absl::StrCat("options.cost ", cost, " is not a known cost"));
  }
  o.cost = static_cast<Cost>(cost);
  CONVNET_RETURN_IF_ERROR(r.U64("options.seed", &o.seed));
  CONVNET_RETURN_IF_ERROR(r.I32("options.progress_every", &o.progress_every));

  CONVNET_RETURN_IF_ERROR(r.String("train_dataset", &m->train_dataset));
  CONVNET_RETURN_IF_ERROR(r.I64("train_examples", &m->train_examples));
  CONVNET_RETURN_IF_ERROR(r.String("init_from", &m->init_from));
  CONVNET_RETURN_IF_ERROR(r.U64("init_seed", &m->init_seed));

  uint32_t epoch_count = 0;
  CONVNET_RETURN_IF_ERROR(r.U32("epoch count", &epoch_count));
  if (uint64_t{epoch_count} * kEpochRecordBytes > r.remaining()) {
    return absl::DataLossError(absl::StrCat(
        epoch_count, " epoch records (", uint64_t{epoch_count} * kEpochRecordBytes,
        " bytes) run past the end of the payload (", r.remaining(),
        " bytes left at payload offset ", r.offset(), ")"));
  }
  m->epochs.resize(epoch_count);
  for (EpochMetrics& e : m->epochs) {
    CONVNET_RETURN_IF_ERROR(r.I32("epoch", &e.epoch));
    CONVNET_RETURN_IF_ERROR(r.F64("epoch train_cost", &e.train_cost));
    CONVNET_RETURN_IF_ERROR(r.F64("epoch test_accuracy", &e.test_accuracy));
    CONVNET_RETURN_IF_ERROR(r.F64("epoch test_cost", &e.test_cost));
    CONVNET_RETURN_IF_ERROR(r.I64("epoch test_examples", &e.test_examples));
    CONVNET_RETURN_IF_ERROR(r.F64("epoch seconds", &e.seconds));
  }

  CONVNET_RETURN_IF_ERROR(r.I64("created_unix_ms", &m->created_unix_ms));
  CONVNET_RETURN_IF_ERROR(r.I64("train_started_unix_ms", &m->train_started_unix_ms));
  CONVNET_RETURN_IF_ERROR(r.I64("train_finished_unix_ms", &m->train_finished_unix_ms));
  return absl::OkStatus();
}

// ---------------------------------------------------------------- files

// PERMISSION_DENIED for the errno values that mean "not allowed", INTERNAL for
// every other I/O failure; the message ends with the system's explanation.
absl::Status IoError(int error_number, absl::string_view message) {
  const std::string text = absl::StrCat(message, ": ", std::strerror(error_number));
  if (error_number == EACCES || error_number == EPERM || error_number == EROFS) {
    return absl::PermissionDeniedError(text);
  }
  return absl::InternalError(text);
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(errno, "write");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(errno, absl::StrCat("cannot open directory ", dir, " to fsync it"));
  const int rc = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (rc != 0) return IoError(fsync_errno, absl::StrCat("cannot fsync directory ", dir));
  return absl::OkStatus();
}

// Writes `bytes` to the new file `temp` (which must not exist), fsyncs and
// closes it. The caller removes `temp` when this fails.
absl::Status WriteNewFile(const std::string& temp, absl::string_view bytes) {
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(errno, absl::StrCat("cannot create temporary file ", temp));
  absl::Status status = WriteAll(fd, bytes);
  if (!status.ok()) {
    ::close(fd);
    return absl::Status(status.code(), absl::StrCat(temp, ": ", status.message()));
  }
  if (::fsync(fd) != 0) {
    const int fsync_errno = errno;
    ::close(fd);
    return IoError(fsync_errno, absl::StrCat("cannot fsync ", temp));
  }
  if (::close(fd) != 0) return IoError(errno, absl::StrCat("cannot close ", temp));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such model file"));
    return IoError(errno, absl::StrCat(path, ": cannot open"));
  }
  std::string contents;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int read_errno = errno;
      ::close(fd);
      return IoError(read_errno, absl::StrCat(path, ": cannot read"));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

}  // namespace

absl::StatusOr<std::string> EncodeModel(const Model& model) {
  const absl::Span<const float> flat = model.parameters.flat();
  if (const std::optional<size_t> i = FindNonFinite(flat)) {
    return absl::InvalidArgumentError(absl::StrCat("refusing to encode a model whose parameter ", *i,
                                                   " is not finite (", flat[*i], ")"));
  }
  const std::string payload = EncodePayload(model);
  Writer w;
  w.Bytes(kMagic);
  w.U32(kModelFormatVersion);
  w.U64(payload.size());
  w.Bytes(payload);
  const uint32_t crc = Crc32(w.str());
  w.U32(crc);
  return std::move(w.str());
}

absl::StatusOr<Model> DecodeModel(absl::string_view bytes) {
  if (bytes.size() < kHeaderBytes + kChecksumBytes) {
    return absl::DataLossError(absl::StrCat("model file truncated: expected at least ",
                                            kHeaderBytes + kChecksumBytes, " bytes, got ",
                                            bytes.size()));
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError(absl::StrCat("not a model file: wrong magic \"",
                                            absl::CHexEscape(bytes.substr(0, kMagic.size())),
                                            "\", expected \"", kMagic, "\""));
  }
  const uint32_t version = static_cast<uint32_t>(LittleAt(bytes, 8, 4));
  if (version != kModelFormatVersion) {
    return absl::DataLossError(absl::StrCat("unsupported model format version ", version,
                                            " (this build reads version ",
                                            kModelFormatVersion, ")"));
  }
  const uint64_t payload_length = LittleAt(bytes, 12, 8);
  const size_t available = bytes.size() - kHeaderBytes - kChecksumBytes;
  if (payload_length > available) {
    // Spelled out when the sum would overflow (a corrupt length near 2^64).
    constexpr uint64_t kOverhead = kHeaderBytes + kChecksumBytes;
    const std::string expected =
        payload_length <= std::numeric_limits<uint64_t>::max() - kOverhead
            ? absl::StrCat(payload_length + kOverhead)
            : absl::StrCat(payload_length, " + ", kOverhead);
    return absl::DataLossError(absl::StrCat("model file truncated: its header's payload length ",
                                            payload_length, " means ", expected,
                                            " bytes expected, got ", bytes.size()));
  }
  if (payload_length < available) {
    return absl::DataLossError(absl::StrCat(
        "model file has ", available - payload_length, " trailing bytes: expected ",
        payload_length + kHeaderBytes + kChecksumBytes, " bytes, got ", bytes.size()));
  }
  const size_t checked_length = kHeaderBytes + payload_length;
  const uint32_t stored_crc = static_cast<uint32_t>(LittleAt(bytes, checked_length, 4));
  const uint32_t actual_crc = Crc32(bytes.substr(0, checked_length));
  if (stored_crc != actual_crc) {
    return absl::DataLossError(absl::StrFormat(
        "model file checksum mismatch: stored CRC-32 0x%08x, computed 0x%08x", stored_crc,
        actual_crc));
  }

  Reader reader(bytes.substr(kHeaderBytes, payload_length));
  CONVNET_ASSIGN_OR_RETURN(Parameters parameters, DecodeParameters(reader));
  ModelMetadata metadata;
  CONVNET_RETURN_IF_ERROR(DecodeMetadata(reader, &metadata));
  if (reader.remaining() != 0) {
    return absl::DataLossError(absl::StrCat("model payload has ", reader.remaining(),
                                            " trailing bytes after its last field (payload offset ",
                                            reader.offset(), ")"));
  }
  return Model{std::move(parameters), std::move(metadata)};
}

absl::Status WriteModelFile(const std::string& path, const Model& model) {
  absl::StatusOr<std::string> encoded = EncodeModel(model);
  if (!encoded.ok()) {
    return absl::Status(encoded.status().code(),
                        absl::StrCat("cannot write model file ", path, ": ", encoded.status().message()));
  }
  const std::string& bytes = *encoded;
  absl::BitGen random;
  const std::string temp =
      absl::StrCat(path, ".tmp-", absl::StrFormat("%016x", absl::Uniform<uint64_t>(random)));

  absl::Status status = WriteNewFile(temp, bytes);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = IoError(errno, absl::StrCat("cannot rename ", temp, " to ", path));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());  // may not exist when the create itself failed
    return absl::Status(status.code(),
                        absl::StrCat("cannot write model file ", path, ": ", status.message()));
  }
  // The file is in place; this makes the rename itself durable.
  status = FsyncDirectory(DirectoryOf(path));
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("wrote model file ", path, " but ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Model> ReadModelFile(const std::string& path) {
  CONVNET_ASSIGN_OR_RETURN(const std::string bytes, ReadWholeFile(path));
  absl::StatusOr<Model> model = DecodeModel(bytes);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

}  // namespace convnet
