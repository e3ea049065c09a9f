// Job records on disk, so that ListTrainingJobs / GetTrainingJob survive a
// restart and a job interrupted by a crash is reported, not forgotten.
//
// Layout:   <model_dir>/.jobs/<job id>.job      one record per job
//           <model_dir>/.jobs/.tmp-*             a write in progress (removed at open)
//           <model_dir>/.jobs/<job id>.job.corrupt   a record that failed its checks
// The directory is hidden, so the model repository never takes it for a model
// (model names cannot start with ".").
//
// A record holds a JobInfo only (the job's metadata, epochs and latest
// progress), never the training data or parameters:
//   magic "CNVNJOB1" (8 bytes) | payload length u64 | payload | crc32 u32 of
//   everything before it (integers little-endian; zlib's CRC-32)
// where the payload is a serialised convnet.v1.TrainingJob (the message
// GetTrainingJob returns, so the fields mean what the API documents).
//
// Save() replaces a record atomically: temporary file, fsync, rename over the
// record, fsync of the directory. A reader (or a restart after a crash at any
// moment) finds either the previous record or the new one, never a mix.
#ifndef CONVNET_SERVER_JOB_STORE_H_
#define CONVNET_SERVER_JOB_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/job_manager.h"

namespace convnet::server {

inline constexpr const char* kJobRecordDirectory = ".jobs";

// A record's bytes in the format above, and back. DecodeJobRecord returns
// DATA_LOSS naming what is wrong (truncation, magic, length, checksum, an
// unparsable payload, a bad id, model name or state).
std::string EncodeJobRecord(const JobInfo& job);
absl::StatusOr<JobInfo> DecodeJobRecord(absl::string_view bytes);

// What Load() found.
struct LoadedJobRecords {
  std::vector<JobInfo> jobs;          // every valid record, in no particular order
  std::vector<std::string> all_ids;   // ids of every record file, valid or quarantined
};

class JobStore {
 public:
  // Opens `dir` (creating it when missing). INTERNAL/PERMISSION_DENIED naming
  // the path when it cannot be created.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& dir);

  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  const std::string& dir() const { return dir_; }

  // Reads every record. Never fails because of one record: temporary files
  // are removed; a record that cannot be read or fails its checks (or whose id
  // does not match its file name) is renamed to "<file>.corrupt" and logged,
  // and its id still reported in all_ids (so that it is never reused).
  // INTERNAL naming the path only when the directory cannot be listed.
  absl::StatusOr<LoadedJobRecords> Load() const;

  // Writes (or replaces) the record of job.id atomically, durable on return.
  // INVALID_ARGUMENT for an id that is not a safe file name ([0-9A-Za-z_-]+);
  // INTERNAL/PERMISSION_DENIED naming the path when writing fails (the
  // previous record, if any, is then intact).
  absl::Status Save(const JobInfo& job);

  // Deletes the record of `id` (OK when there is none).
  absl::Status Remove(absl::string_view id);

 private:
  explicit JobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string RecordPath(absl::string_view id) const;

  const std::string dir_;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_JOB_STORE_H_
