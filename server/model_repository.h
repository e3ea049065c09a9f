// The model repository: every version of every model, on disk in TF Serving's
// layout and in memory as immutable snapshots.
//
// Layout:   <model_dir>/<name>/<version>/model.cnvn
//           <model_dir>/<name>/.highest_version   highest number ever reserved
//   <name>     matches [a-z0-9][a-z0-9_-]* (names.h)
//   <version>  a positive decimal number without leading zeros
//   model.cnvn core's model file (core/model_file.h, CRC-protected)
// Hidden entries of <model_dir> (".jobs", the job records) are not models.
//
// Guarantees
// - Open() loads every complete version. A version directory whose model file
//   is missing or fails its checks is skipped with a warning (never served),
//   but its number stays taken. Temporary directories left by a crash
//   (".tmp-*") are removed. A ".highest_version" that is not a number >= 0
//   is logged as an error, and the model's versions are served but no new
//   version is published until the file is fixed.
// - Publish() writes the new version into a temporary directory with core's
//   atomic WriteModelFile, fsyncs it, renames the directory into place, fsyncs
//   the parent and only then makes the version visible. A reader therefore
//   never sees a half-written version, on disk or in memory, and a restart
//   finds every published version.
// - Version numbers are never reused: a new version is one more than the
//   highest number ever seen for that model (published, reserved by a publish
//   in progress, or present on disk, complete or not). Publish() writes the
//   reserved number to ".highest_version" (atomically, durably) before it
//   writes anything of the version, so a crash at any point of a publish, even
//   repeated crashes before the next publish, never frees a number.
// - LoadNewVersions() (SIGHUP) serves version directories that appeared on
//   disk while the server runs; a served version is never unloaded or
//   replaced.
// - Get() hands out a shared_ptr<const Model>: one immutable version, which
//   stays valid for as long as the caller holds it.
#ifndef CONVNET_SERVER_MODEL_REPOSITORY_H_
#define CONVNET_SERVER_MODEL_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/model_file.h"

namespace convnet::server {

inline constexpr const char* kModelFileName = "model.cnvn";

// One version of one model, as served.
struct ServedVersion {
  std::string model_name;
  int64_t version = 0;
  std::shared_ptr<const Model> model;
};

// A model and its served versions, ascending by version.
struct ModelVersions {
  std::string model_name;
  std::vector<ServedVersion> versions;
};

class ModelRepository {
 public:
  // Opens (creating it when missing) `model_dir` and loads every complete
  // version. INTERNAL/PERMISSION_DENIED naming the path when the directory
  // cannot be created or listed. Logs what it loaded and skipped.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& model_dir);

  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  const std::string& model_dir() const { return model_dir_; }

  // The version `version` of model `name`, or its latest version when
  // version == 0. INVALID_ARGUMENT for a bad name or a negative version;
  // NOT_FOUND for an unknown model or version (naming them).
  absl::StatusOr<ServedVersion> Get(absl::string_view name, int64_t version) const;

  // Stores `model` as the next version of `name` (creating the model when it
  // is new) and makes it visible; returns the published version. Safe to call
  // concurrently, also for the same model. INTERNAL/PERMISSION_DENIED naming
  // the path when writing fails; nothing is published then (the reserved
  // number is not reused). FAILED_PRECONDITION, before anything is written,
  // when a parameter is not finite, when the model's .highest_version was
  // unreadable at Open() (naming the file and what it holds), and when the
  // next number would overflow (.highest_version is INT64_MAX).
  absl::StatusOr<ServedVersion> Publish(absl::string_view name, Model model);

  // Loads every complete version directory on disk that is not served yet
  // (of known models and of model directories new on disk) and serves it; its
  // number counts as taken from then on. Returns "<name>/<version>" of each
  // version loaded, sorted. Never unloads or replaces a served version, and
  // leaves ".tmp-*" directories alone (a publish may be writing one). A
  // directory whose model file is missing or fails its checks (e.g. still
  // being copied) is skipped with a warning and tried again at the next call.
  // INTERNAL/PERMISSION_DENIED naming the path when a directory cannot be
  // listed (nothing of that model is loaded then). Safe to call while serving
  // and publishing.
  absl::StatusOr<std::vector<std::string>> LoadNewVersions();

  // Every model with at least one served version, sorted by name.
  std::vector<ModelVersions> List() const;

  // One model's served versions. NOT_FOUND for an unknown model.
  absl::StatusOr<ModelVersions> GetModel(absl::string_view name) const;

 private:
  struct Entry {
    std::map<int64_t, std::shared_ptr<const Model>> versions;  // served
    int64_t highest_taken = 0;  // highest number ever seen or reserved
    std::string reservation_error;  // why .highest_version could not be read ("" = it could)
  };

  explicit ModelRepository(std::string model_dir) : model_dir_(std::move(model_dir)) {}

  absl::Status LoadAll();
  // The names of the model directories on disk, warning about other entries.
  absl::StatusOr<std::vector<std::string>> ListModelDirectories() const;
  // Loads the versions of model `name` found on disk that are not served yet
  // and appends "<name>/<version>" of each to `loaded`. At Open
  // (`at_open`), ".tmp-*" leftovers of a crash are removed.
  absl::Status LoadModelDirectory(const std::string& name, bool at_open, std::vector<std::string>* loaded);
  static ModelVersions Versions(const std::string& name, const Entry& entry);

  const std::string model_dir_;
  absl::Mutex reserve_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serialises the reservation writes
  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_MODEL_REPOSITORY_H_
