// The model file format (see model_file.h; the envelope, the first 20 bytes
// and the last 4, is core/record_envelope.h's).
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

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/file_util.h"
#include "core/record_envelope.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4);
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8);
// TrainOptions and EpochMetrics hold their counts as int; stored as i32.
static_assert(std::is_same_v<int, int32_t>);

constexpr RecordFormat kModelFormat{"model", "CNVNMODL", kModelFormatVersion};
constexpr size_t kEpochRecordBytes = 4 + 8 + 8 + 8 + 8 + 8;

// ---------------------------------------------------------------- encoding

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { AppendLittleEndian(v, 4, &out_); }
  void U64(uint64_t v) { AppendLittleEndian(v, 8, &out_); }
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
    const uint64_t v = LoadLittleEndian(bytes_, offset_, n);
    offset_ += n;
    return v;
  }

  absl::string_view bytes_;
  size_t offset_ = 0;
};

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

}  // namespace

absl::StatusOr<std::string> EncodeModel(const Model& model) {
  const absl::Span<const float> flat = model.parameters.flat();
  if (const std::optional<size_t> i = FindNonFinite(flat)) {
    return absl::InvalidArgumentError(absl::StrCat("refusing to encode a model whose parameter ", *i,
                                                   " is not finite (", flat[*i], ")"));
  }
  return EncodeRecord(kModelFormat, EncodePayload(model));
}

absl::StatusOr<Model> DecodeModel(absl::string_view bytes) {
  CONVNET_ASSIGN_OR_RETURN(const absl::string_view payload, DecodeRecord(kModelFormat, bytes));
  Reader reader(payload);
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
  if (absl::Status written = WriteFileAtomically(path, *encoded); !written.ok()) {
    return absl::Status(written.code(), absl::StrCat("cannot write model file ", path, ": ", written.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Model> ReadModelFile(const std::string& path) {
  CONVNET_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  absl::StatusOr<Model> model = DecodeModel(bytes);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

}  // namespace convnet
