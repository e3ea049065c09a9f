// The model file: a versioned binary format holding K, the parameters and the
// training metadata, protected by a CRC-32 checksum, written atomically.
//
// Layout (all integers little-endian), the record envelope of
// core/record_envelope.h:
//   magic "CNVNMODL" (8 bytes) | format version u32 | payload length u64 |
//   payload | crc32 u32 of everything before it
// The payload is documented in model_file.cc.
#ifndef CONVNET_CORE_MODEL_FILE_H_
#define CONVNET_CORE_MODEL_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/parameters.h"
#include "core/train_options.h"

namespace convnet {

inline constexpr uint32_t kModelFormatVersion = 1;

struct ModelMetadata {
  bool trained = false;                // false for a freshly initialised model
  TrainOptions options;                // hyperparameters of the run that produced it
  std::string train_dataset;           // e.g. "mnist" or "inline"; free text
  int64_t train_examples = 0;
  std::string init_from;               // "" or "<name>/<version>" it started from
  uint64_t init_seed = 0;              // seed of the initialisation (when not init_from)
  std::vector<EpochMetrics> epochs;    // one per finished epoch, in order
  int64_t created_unix_ms = 0;         // when the file was written
  int64_t train_started_unix_ms = 0;
  int64_t train_finished_unix_ms = 0;
};

struct Model {
  Parameters parameters;
  ModelMetadata metadata;
};

// Serialises `model` to bytes in the format above. INVALID_ARGUMENT naming the
// index when a parameter is not finite: such a model is never stored.
absl::StatusOr<std::string> EncodeModel(const Model& model);

// Parses bytes. DATA_LOSS with a clear message for: DecodeRecord's envelope
// errors (truncation naming the expected and actual lengths, a wrong magic,
// an unsupported format version naming it, a checksum mismatch naming both
// checksums) and inconsistent sizes in the payload (a K out of range, a
// parameter count that does not match K, string or list lengths past the end).
absl::StatusOr<Model> DecodeModel(absl::string_view bytes);

// Writes EncodeModel's bytes with WriteFileAtomically (core/file_util.h):
// "<dir>/.tmp-<file name>-<random>", fsync, rename over `path`, fsync of the
// directory. EncodeModel's INVALID_ARGUMENT (nothing is written) or
// INTERNAL/PERMISSION_DENIED naming the path on failure; the temporary file
// is removed on every failure.
absl::Status WriteModelFile(const std::string& path, const Model& model);

// Reads and decodes. ReadFile's errors naming the path (NOT_FOUND when
// missing); DecodeModel's errors prefixed with the path.
absl::StatusOr<Model> ReadModelFile(const std::string& path);

}  // namespace convnet

#endif  // CONVNET_CORE_MODEL_FILE_H_
