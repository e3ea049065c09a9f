#include "client/job_watch.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/exit_codes.h"
#include "client/format.h"
#include "client/json.h"
#include "client/progress_bar.h"

namespace convnet::client {

using convnet::v1::TrainingJob;
using convnet::v1::WatchTrainingJobResponse;

std::string DescribeJob(const TrainingJob& job) {
  std::string text = absl::StrFormat("job %s\n", job.job_id());
  absl::StrAppendFormat(&text, "  model:           %s (K=%d", job.model_name(), job.feature_maps());
  if (!job.init_from().empty()) absl::StrAppend(&text, ", starting from ", job.init_from());
  absl::StrAppend(&text, ")\n");
  absl::StrAppendFormat(
      &text, "  state:           %s%s\n", JobStateName(job.state()),
      job.cancel_requested() && !IsFinal(job.state()) ? " (cancel requested)" : "");
  if (job.state() == convnet::v1::JOB_STATE_SUCCEEDED) {
    absl::StrAppendFormat(&text, "  version:         %d\n", job.version());
  }
  absl::StrAppendFormat(&text, "  training set:    %s (%d examples)\n", job.train_dataset(),
                        job.train_examples());
  if (!job.eval_dataset().empty()) {
    absl::StrAppendFormat(&text, "  evaluation set:  %s (%d examples)\n", job.eval_dataset(),
                          job.eval_examples());
  }
  absl::StrAppendFormat(&text, "  hyperparameters: %s\n",
                        FormatHyperparameters(job.hyperparameters()));
  if (job.has_progress() && !IsFinal(job.state())) {
    const auto& progress = job.progress();
    absl::StrAppendFormat(&text,
                          "  progress:        epoch %d/%d, %d/%d samples, running cost %.4f\n",
                          progress.epoch(), job.hyperparameters().epochs(), progress.samples_done(),
                          progress.samples_total(), progress.running_cost());
  }
  for (const auto& epoch : job.epochs()) {
    absl::StrAppendFormat(&text, "  %s\n", FormatEpoch(epoch, job.hyperparameters().epochs()));
  }
  absl::StrAppendFormat(&text, "  created:         %s\n", FormatTimestamp(job.created_unix_ms()));
  if (job.started_unix_ms() != 0) {
    absl::StrAppendFormat(&text, "  started:         %s\n", FormatTimestamp(job.started_unix_ms()));
  }
  if (job.finished_unix_ms() != 0) {
    absl::StrAppendFormat(&text, "  finished:        %s", FormatTimestamp(job.finished_unix_ms()));
    if (job.started_unix_ms() != 0) {
      absl::StrAppendFormat(&text, " (ran %.1f s)",
                            (job.finished_unix_ms() - job.started_unix_ms()) / 1000.0);
    }
    absl::StrAppend(&text, "\n");
  }
  if (!job.error().empty()) absl::StrAppendFormat(&text, "  error:           %s\n", job.error());
  return text;
}

namespace {

// Turns the stream's updates into text: a bar per epoch, a line per epoch.
class WatchPrinter {
 public:
  void OnJob(const TrainingJob& job) {
    total_epochs_ = job.hyperparameters().epochs();
    if (printed_header_) return;
    printed_header_ = true;
    std::string eval = job.eval_dataset().empty()
                           ? "no evaluation set"
                           : absl::StrFormat("evaluated on %s (%d examples)", job.eval_dataset(),
                                             job.eval_examples());
    absl::PrintF("job %s: model %s, K=%d%s, trained on %s (%d examples), %s\n", job.job_id(),
                 job.model_name(), job.feature_maps(),
                 job.init_from().empty() ? "" : absl::StrCat(", from ", job.init_from()),
                 job.train_dataset(), job.train_examples(), eval);
    absl::PrintF("  %s\n", FormatHyperparameters(job.hyperparameters()));
    absl::PrintF("  state: %s\n", JobStateName(job.state()));
    std::fflush(stdout);
  }

  void OnState(convnet::v1::JobState state) {
    // The final state is reported by the outcome line.
    if (IsFinal(state)) return;
    bar_.Clear();
    absl::PrintF("  state: %s\n", JobStateName(state));
    std::fflush(stdout);
  }

  void OnProgress(const convnet::v1::TrainingProgress& progress) {
    const absl::Time now = absl::Now();
    if (progress.epoch() != epoch_) {
      epoch_ = progress.epoch();
      epoch_first_seen_ = now;
      epoch_first_samples_ = progress.samples_done();
    }
    std::string suffix = absl::StrFormat("cost %.4f", progress.running_cost());
    const double seconds = absl::ToDoubleSeconds(now - epoch_first_seen_);
    if (seconds > 0.05 && progress.samples_done() > epoch_first_samples_) {
      absl::StrAppendFormat(&suffix, "  %.0f samples/s",
                            (progress.samples_done() - epoch_first_samples_) / seconds);
    }
    bar_.Update(absl::StrFormat("  epoch %d/%d", progress.epoch(), total_epochs_),
                progress.samples_done(), progress.samples_total(), suffix);
  }

  void OnEpoch(const convnet::v1::EpochMetrics& epoch) {
    bar_.Clear();
    absl::PrintF("  %s\n", FormatEpoch(epoch, total_epochs_));
    std::fflush(stdout);
  }

  void Finish() { bar_.Clear(); }

 private:
  ProgressBar bar_{stdout};
  bool printed_header_ = false;
  int total_epochs_ = 0;
  int epoch_ = 0;
  absl::Time epoch_first_seen_;
  int64_t epoch_first_samples_ = 0;
};

}  // namespace

int WatchJob(Connection& connection, const std::string& job_id, bool json) {
  convnet::v1::WatchTrainingJobRequest request;
  request.set_job_id(job_id);
  auto context = connection.NewStreamContext();
  auto reader = connection.stub().WatchTrainingJob(context.get(), request);

  WatchPrinter printer;
  TrainingJob last_job;
  bool finished = false;
  WatchTrainingJobResponse update;
  while (reader->Read(&update)) {
    switch (update.update_case()) {
      case WatchTrainingJobResponse::kJob:
        last_job = update.job();
        finished = IsFinal(last_job.state());
        if (!json) printer.OnJob(last_job);
        break;
      case WatchTrainingJobResponse::kState:
        if (!json) printer.OnState(update.state());
        break;
      case WatchTrainingJobResponse::kProgress:
        if (!json) printer.OnProgress(update.progress());
        break;
      case WatchTrainingJobResponse::kEpoch:
        if (!json) printer.OnEpoch(update.epoch());
        break;
      case WatchTrainingJobResponse::UPDATE_NOT_SET:
        break;
    }
  }
  printer.Finish();
  grpc::Status status = reader->Finish();
  if (!status.ok()) return connection.ReportError("WatchTrainingJob", status);
  if (!finished) {
    absl::FPrintF(stderr, "error: the watch stream of job %s ended before the job finished\n",
                  job_id);
    return kExitRefused;
  }

  if (json) {
    absl::PrintF("%s\n", ProtoToJson(last_job));
  } else {
    const double seconds =
        last_job.started_unix_ms() != 0
            ? (last_job.finished_unix_ms() - last_job.started_unix_ms()) / 1000.0
            : 0.0;
    if (last_job.state() == convnet::v1::JOB_STATE_SUCCEEDED) {
      absl::PrintF("job %s SUCCEEDED in %.1f s: %s version %d is now served\n", job_id, seconds,
                   last_job.model_name(), last_job.version());
    } else {
      absl::PrintF("job %s %s: %s\n", job_id, JobStateName(last_job.state()),
                   last_job.error().empty() ? "(no reason given)" : last_job.error());
    }
  }
  return last_job.state() == convnet::v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitJobFailed;
}

}  // namespace convnet::client
