// Test-only crash points. The crash-recovery test starts a server process with
// the environment variable CONVNET_TEST_CRASH_POINT=<name> (or <name>@<n>);
// when that process reaches the point of that name (for the n-th time; the
// first when "@<n>" is absent) it logs one line and kills itself with
// SIGKILL, so that the test can stop the server at an exact place of the
// publish and job-record paths, places random timing hits only rarely.
//
// Off by default: the variable is read once, at the first call; unset, every
// later call costs one comparison with an empty string. The server never sets
// it and operators have no reason to.
//
// The points, in the order a successful job passes them:
//   durable_file.after_temp_write  a file (job record, version reservation) is
//                                  written and fsynced under ".tmp-*", not renamed
//   jobs.after_running_record      the RUNNING record is on disk, training not started
//   jobs.after_epoch_record        a record with a finished epoch's metrics is on disk
//   repository.after_reserve       a version number is reserved on disk, nothing else written
//   repository.after_model_write   the model file is complete in ".tmp-*", not yet renamed
//   repository.after_rename        the version directory is in place, not yet served
//   jobs.after_publish             the version is published, the job's record still RUNNING
#ifndef CONVNET_SERVER_CRASH_POINT_H_
#define CONVNET_SERVER_CRASH_POINT_H_

#include "absl/strings/string_view.h"

namespace convnet::server {

inline constexpr const char* kCrashPointVariable = "CONVNET_TEST_CRASH_POINT";

// The point every durable server file write (job record, version
// reservation) passes: WriteFileAtomically's `before_rename`.
inline constexpr absl::string_view kCrashAfterTempWrite = "durable_file.after_temp_write";

// Raises SIGKILL (and never returns) when the process reaches the point
// $CONVNET_TEST_CRASH_POINT names, for the count it names; otherwise returns.
void CrashPoint(absl::string_view name);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_CRASH_POINT_H_
