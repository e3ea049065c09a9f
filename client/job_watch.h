// Following a training job to its end (train --wait, watch ID).
#ifndef CONVNET_CLIENT_JOB_WATCH_H_
#define CONVNET_CLIENT_JOB_WATCH_H_

#include <string>

#include "client/connection.h"
#include "convnet/v1/convnet.pb.h"

namespace convnet::client {

// Follows job `job_id` with WatchTrainingJob until it ends: in text mode a
// progress bar during each epoch, a line per finished epoch and the outcome;
// with `json`, only the final job as JSON. Returns kExitOk when the job
// SUCCEEDED, kExitJobFailed when it FAILED or was CANCELLED, and the error's
// exit status when the stream broke (e.g. the server shut down).
int WatchJob(Connection& connection, const std::string& job_id, bool json);

// The multi-line description of a job used by `job ID` and `watch`.
std::string DescribeJob(const convnet::v1::TrainingJob& job);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_JOB_WATCH_H_
