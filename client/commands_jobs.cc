// convnet_client jobs [MODEL], job ID, cancel ID: the training jobs.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/job_watch.h"
#include "client/json.h"
#include "client/table.h"

ABSL_FLAG(std::string, state, "",
          "jobs: only jobs in this state (queued, running, succeeded, failed, cancelled)");

namespace convnet::client {
namespace {

std::string ProgressCell(const convnet::v1::TrainingJob& job) {
  const int epochs = job.hyperparameters().epochs();
  if (job.state() == convnet::v1::JOB_STATE_RUNNING && job.has_progress()) {
    const auto& progress = job.progress();
    const int percent =
        progress.samples_total() > 0
            ? static_cast<int>(100 * progress.samples_done() / progress.samples_total())
            : 0;
    return absl::StrFormat("epoch %d/%d %d%%", progress.epoch(), epochs, percent);
  }
  return absl::StrFormat("%d/%d epochs", job.epochs_size(), epochs);
}

}  // namespace

int RunJobs(Connection& connection, const Arguments& arguments) {
  if (arguments.size() > 1) return UsageError("jobs", "at most one argument (a model name)");
  convnet::v1::ListTrainingJobsRequest request;
  if (!arguments.empty()) request.set_model_name(arguments[0]);
  const std::string state = absl::GetFlag(FLAGS_state);
  if (!state.empty()) {
    absl::StatusOr<convnet::v1::JobState> parsed = ParseJobState(state);
    if (!parsed.ok()) return UsageError("jobs", parsed.status().message());
    request.set_state(*parsed);
  }
  // Every page, joined into one response.
  convnet::v1::ListTrainingJobsResponse response;
  do {
    convnet::v1::ListTrainingJobsResponse page;
    auto context = connection.NewCallContext();
    grpc::Status status = connection.stub().ListTrainingJobs(context.get(), request, &page);
    if (!status.ok()) return connection.ReportError("ListTrainingJobs", status);
    for (auto& job : *page.mutable_jobs()) *response.add_jobs() = std::move(job);
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());

  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(response));
    return kExitOk;
  }
  if (response.jobs().empty()) {
    absl::PrintF("no training jobs\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"JOB", "MODEL", "STATE", "PROGRESS", "VERSION", "TEST ACCURACY", "CREATED"}};
  for (const auto& job : response.jobs()) {
    std::string accuracy = "-";
    if (!job.epochs().empty() && job.epochs().rbegin()->test_examples() > 0) {
      accuracy = FormatPercent(job.epochs().rbegin()->test_accuracy());
    }
    rows.push_back({job.job_id(), job.model_name(), JobStateName(job.state()), ProgressCell(job),
                    job.version() > 0 ? absl::StrCat(job.version()) : "-", accuracy,
                    FormatTimestamp(job.created_unix_ms())});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunJob(Connection& connection, const Arguments& arguments) {
  if (arguments.size() != 1) return UsageError("job", "expected one job ID");
  convnet::v1::GetTrainingJobRequest request;
  request.set_job_id(arguments[0]);
  convnet::v1::TrainingJob job;
  auto context = connection.NewCallContext();
  grpc::Status status = connection.stub().GetTrainingJob(context.get(), request, &job);
  if (!status.ok()) return connection.ReportError("GetTrainingJob", status);
  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(job));
  } else {
    absl::PrintF("%s", DescribeJob(job));
  }
  return kExitOk;
}

int RunCancel(Connection& connection, const Arguments& arguments) {
  if (arguments.size() != 1) return UsageError("cancel", "expected one job ID");
  convnet::v1::CancelTrainingJobRequest request;
  request.set_job_id(arguments[0]);
  convnet::v1::TrainingJob job;
  auto context = connection.NewCallContext();
  grpc::Status status = connection.stub().CancelTrainingJob(context.get(), request, &job);
  if (!status.ok()) return connection.ReportError("CancelTrainingJob", status);
  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(job));
  } else if (IsFinal(job.state())) {
    absl::PrintF("job %s: %s\n", job.job_id(), JobStateName(job.state()));
  } else {
    absl::PrintF("job %s: cancellation requested, still %s (it stops at the next mini-batch)\n",
                 job.job_id(), JobStateName(job.state()));
  }
  return kExitOk;
}

}  // namespace convnet::client
