#include "server/proto_conversion.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/shape.h"

namespace convnet::server {
namespace {

int64_t UnixMillisOrZero(absl::Time time) {
  return time == absl::InfinitePast() ? 0 : absl::ToUnixMillis(time);
}

}  // namespace

v1::Cost CostToProto(Cost cost) {
  switch (cost) {
    case Cost::kQuadratic:
      return v1::COST_QUADRATIC;
    case Cost::kCrossEntropy:
      return v1::COST_CROSS_ENTROPY;
  }
  return v1::COST_UNSPECIFIED;
}

v1::JobState JobStateToProto(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return v1::JOB_STATE_QUEUED;
    case JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

std::optional<Cost> CostFromProto(int cost) {
  switch (cost) {
    case v1::COST_QUADRATIC:
      return Cost::kQuadratic;
    case v1::COST_CROSS_ENTROPY:
      return Cost::kCrossEntropy;
    default:
      return std::nullopt;
  }
}

std::optional<JobState> JobStateFromProto(int state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return JobState::kQueued;
    case v1::JOB_STATE_RUNNING:
      return JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED:
      return JobState::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return JobState::kFailed;
    case v1::JOB_STATE_CANCELLED:
      return JobState::kCancelled;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<std::optional<JobState>> JobStateFilterFromProto(absl::string_view field, int state) {
  if (state == v1::JOB_STATE_UNSPECIFIED) return std::optional<JobState>();
  std::optional<JobState> filter = JobStateFromProto(state);
  if (!filter.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be a JobState (0..5), got ", state));
  }
  return filter;
}

void ToProto(const TrainOptions& options, v1::Hyperparameters* out) {
  out->set_epochs(options.epochs);
  out->set_batch_size(options.batch_size);
  out->set_learning_rate(options.learning_rate);
  out->set_l2(options.l2);
  out->set_cost(CostToProto(options.cost));
  out->set_seed(options.seed);
  out->set_progress_every(options.progress_every);
}

void ToProto(const EpochMetrics& metrics, v1::EpochMetrics* out) {
  out->set_epoch(metrics.epoch);
  out->set_train_cost(metrics.train_cost);
  out->set_test_accuracy(metrics.test_accuracy);
  out->set_test_cost(metrics.test_cost);
  out->set_test_examples(metrics.test_examples);
  out->set_seconds(metrics.seconds);
}

void ToProto(const TrainProgress& progress, v1::TrainingProgress* out) {
  out->set_epoch(progress.epoch);
  out->set_samples_done(progress.samples_done);
  out->set_samples_total(progress.samples_total);
  out->set_running_cost(progress.running_cost);
}

void ToProto(const JobInfo& job, v1::TrainingJob* out) {
  out->set_job_id(job.id);
  out->set_model_name(job.model_name);
  out->set_state(JobStateToProto(job.state));
  out->set_version(job.version);
  out->set_feature_maps(job.feature_maps);
  out->set_init_from(job.init_from);
  out->set_train_dataset(job.train_dataset);
  out->set_eval_dataset(job.eval_dataset);
  out->set_train_examples(job.train_examples);
  out->set_eval_examples(job.eval_examples);
  ToProto(job.options, out->mutable_hyperparameters());
  if (job.progress.has_value()) ToProto(*job.progress, out->mutable_progress());
  for (const EpochMetrics& epoch : job.epochs) ToProto(epoch, out->add_epochs());
  out->set_error(job.error);
  out->set_cancel_requested(job.cancel_requested);
  out->set_created_unix_ms(UnixMillisOrZero(job.created));
  out->set_started_unix_ms(UnixMillisOrZero(job.started));
  out->set_finished_unix_ms(UnixMillisOrZero(job.finished));
}

void ToProto(const Parameters& parameters, v1::Parameters* out) {
  out->set_feature_maps(parameters.k());
  const absl::Span<const float> flat = parameters.flat();
  out->mutable_values()->Assign(flat.begin(), flat.end());
}

void ToProto(const ServedVersion& version, bool include_parameters, v1::ModelVersion* out) {
  const Model& model = *version.model;
  const ModelMetadata& metadata = model.metadata;
  out->set_version(version.version);
  out->set_feature_maps(model.parameters.k());
  out->set_parameter_count(static_cast<int64_t>(ParameterCount(model.parameters.k())));
  out->set_created_unix_ms(metadata.created_unix_ms);
  v1::TrainingInfo* training = out->mutable_training();
  training->set_trained(metadata.trained);
  ToProto(metadata.options, training->mutable_hyperparameters());
  training->set_train_dataset(metadata.train_dataset);
  training->set_train_examples(metadata.train_examples);
  training->set_init_from(metadata.init_from);
  training->set_init_seed(metadata.init_seed);
  for (const EpochMetrics& epoch : metadata.epochs) ToProto(epoch, training->add_epochs());
  training->set_train_started_unix_ms(metadata.train_started_unix_ms);
  training->set_train_finished_unix_ms(metadata.train_finished_unix_ms);
  if (include_parameters) ToProto(model.parameters, out->mutable_parameters());
}

void ToProto(const ModelVersions& model, int64_t latest_version, bool include_parameters, v1::Model* out) {
  out->set_name(model.model_name);
  out->set_latest_version(latest_version);
  for (const ServedVersion& version : model.versions) {
    ToProto(version, include_parameters, out->add_versions());
  }
}

}  // namespace convnet::server
