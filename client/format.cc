#include "client/format.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace convnet::client {

using convnet::v1::Cost;
using convnet::v1::JobState;

std::string JobStateName(JobState state) {
  switch (state) {
    case convnet::v1::JOB_STATE_QUEUED: return "QUEUED";
    case convnet::v1::JOB_STATE_RUNNING: return "RUNNING";
    case convnet::v1::JOB_STATE_SUCCEEDED: return "SUCCEEDED";
    case convnet::v1::JOB_STATE_FAILED: return "FAILED";
    case convnet::v1::JOB_STATE_CANCELLED: return "CANCELLED";
    default: return absl::StrCat("UNSPECIFIED(", static_cast<int>(state), ")");
  }
}

absl::StatusOr<JobState> ParseJobState(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  for (JobState state : {convnet::v1::JOB_STATE_QUEUED, convnet::v1::JOB_STATE_RUNNING,
                         convnet::v1::JOB_STATE_SUCCEEDED, convnet::v1::JOB_STATE_FAILED,
                         convnet::v1::JOB_STATE_CANCELLED}) {
    if (upper == JobStateName(state)) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown job state \"", name,
                   "\" (expected queued, running, succeeded, failed or cancelled)"));
}

bool IsFinal(JobState state) {
  return state == convnet::v1::JOB_STATE_SUCCEEDED || state == convnet::v1::JOB_STATE_FAILED ||
         state == convnet::v1::JOB_STATE_CANCELLED;
}

std::string CostName(Cost cost) {
  switch (cost) {
    case convnet::v1::COST_CROSS_ENTROPY: return "cross-entropy";
    case convnet::v1::COST_QUADRATIC: return "quadratic";
    default: return absl::StrCat("unspecified(", static_cast<int>(cost), ")");
  }
}

absl::StatusOr<Cost> ParseCost(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "cross-entropy" || lower == "cross_entropy" || lower == "ce") {
    return convnet::v1::COST_CROSS_ENTROPY;
  }
  if (lower == "quadratic") return convnet::v1::COST_QUADRATIC;
  return absl::InvalidArgumentError(
      absl::StrCat("--cost=", name, " is not a cost (expected cross-entropy or quadratic)"));
}

std::string FormatTimestamp(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

std::string FormatPercent(double fraction) { return absl::StrFormat("%.2f%%", 100.0 * fraction); }

std::string FormatHyperparameters(const convnet::v1::Hyperparameters& h) {
  return absl::StrFormat("epochs %d, mini-batch %d, eta %g, lambda %g, %s, seed %d", h.epochs(),
                         h.batch_size(), h.learning_rate(), h.l2(), CostName(h.cost()), h.seed());
}

std::string FormatEpoch(const convnet::v1::EpochMetrics& epoch, int total_epochs) {
  std::string line = absl::StrFormat("epoch %d", epoch.epoch());
  if (total_epochs > 0) absl::StrAppendFormat(&line, "/%d", total_epochs);
  absl::StrAppendFormat(&line, ": train cost %.4f", epoch.train_cost());
  if (epoch.test_examples() > 0) {
    absl::StrAppendFormat(&line, ", test accuracy %s (%d examples), test cost %.4f",
                          FormatPercent(epoch.test_accuracy()), epoch.test_examples(),
                          epoch.test_cost());
  }
  absl::StrAppendFormat(&line, ", %.1f s", epoch.seconds());
  return line;
}

}  // namespace convnet::client
