// Core and server types -> wire messages (convnet.v1). Pure data mapping.
#ifndef CONVNET_SERVER_PROTO_CONVERSION_H_
#define CONVNET_SERVER_PROTO_CONVERSION_H_

#include <optional>

#include "absl/status/statusor.h"
#include "convnet/v1/convnet.pb.h"
#include "core/cost.h"
#include "core/model_file.h"
#include "core/train_options.h"
#include "core/trainer.h"
#include "server/job_manager.h"
#include "server/model_repository.h"

namespace convnet::server {

v1::Cost CostToProto(Cost cost);
v1::JobState JobStateToProto(JobState state);
// The inverse mappings; nullopt for UNSPECIFIED and for values outside the
// enum (each caller says what that means for it).
std::optional<Cost> CostFromProto(int cost);
std::optional<JobState> JobStateFromProto(int state);
// JOB_STATE_UNSPECIFIED -> nullopt (no filter); INVALID_ARGUMENT for unknown values.
absl::StatusOr<std::optional<JobState>> JobStateFilterFromProto(absl::string_view field, int state);

void ToProto(const TrainOptions& options, v1::Hyperparameters* out);
void ToProto(const EpochMetrics& metrics, v1::EpochMetrics* out);
void ToProto(const TrainProgress& progress, v1::TrainingProgress* out);
void ToProto(const JobInfo& job, v1::TrainingJob* out);
void ToProto(const Parameters& parameters, v1::Parameters* out);
// One served version's description; its parameters only with include_parameters.
void ToProto(const ServedVersion& version, bool include_parameters, v1::ModelVersion* out);
// A model with the given versions (ascending); latest_version is the model's
// latest, passed separately because `versions` may be a subset.
void ToProto(const ModelVersions& model, int64_t latest_version, bool include_parameters, v1::Model* out);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_PROTO_CONVERSION_H_
