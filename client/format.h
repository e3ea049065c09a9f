// Text forms of the API's enums and values, shared by the subcommands.
#ifndef CONVNET_CLIENT_FORMAT_H_
#define CONVNET_CLIENT_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnet/v1/convnet.pb.h"

namespace convnet::client {

// "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED" ("UNSPECIFIED" for 0).
std::string JobStateName(convnet::v1::JobState state);
// Parses those names, case-insensitively; INVALID_ARGUMENT naming the value.
absl::StatusOr<convnet::v1::JobState> ParseJobState(absl::string_view name);
// True for SUCCEEDED, FAILED and CANCELLED.
bool IsFinal(convnet::v1::JobState state);

// "cross-entropy" or "quadratic".
std::string CostName(convnet::v1::Cost cost);
// Parses "cross-entropy" (or "cross_entropy", "ce") and "quadratic"; INVALID_ARGUMENT otherwise.
absl::StatusOr<convnet::v1::Cost> ParseCost(absl::string_view name);

// Milliseconds since the Unix epoch as local "YYYY-MM-DD HH:MM:SS"; "-" for 0.
std::string FormatTimestamp(int64_t unix_ms);
// A fraction in [0, 1] as a percentage with two decimals, e.g. "91.52%".
std::string FormatPercent(double fraction);
// One line of a job's hyperparameters, e.g.
// "epochs 3, mini-batch 10, eta 0.5, lambda 0, cross-entropy, seed 1".
std::string FormatHyperparameters(const convnet::v1::Hyperparameters& hyperparameters);
// One line of an epoch's metrics, e.g. "epoch 2/3: train cost 0.31, test
// accuracy 91.52% (10000 examples), test cost 0.21, 1.3 s".
std::string FormatEpoch(const convnet::v1::EpochMetrics& epoch, int total_epochs);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_FORMAT_H_
