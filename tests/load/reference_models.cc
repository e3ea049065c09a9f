#include "reference_models.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/image_batch.h"
#include "grpcpp/client_context.h"

namespace convnet::load_testing {

ReferenceModels::ReferenceModels(std::shared_ptr<grpc::Channel> channel, std::string model_name,
                                 const Dataset& images)
    : stub_(v1::ConvNet::NewStub(std::move(channel))), model_name_(std::move(model_name)), images_(images) {}

absl::StatusOr<std::shared_ptr<const VersionReference>> ReferenceModels::Get(int64_t version) {
  absl::MutexLock lock(&mutex_);
  auto found = versions_.find(version);
  if (found != versions_.end()) return found->second;
  absl::StatusOr<std::shared_ptr<const VersionReference>> computed = Compute(version);
  if (computed.ok()) versions_[version] = *computed;
  return computed;
}

absl::StatusOr<std::shared_ptr<const VersionReference>> ReferenceModels::Compute(int64_t version) {
  v1::GetModelRequest request;
  request.set_model_name(model_name_);
  request.set_version(version);
  request.set_include_parameters(true);
  v1::GetModelResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  const grpc::Status status = stub_->GetModel(&context, request, &response);
  const std::string what = absl::StrCat("GetModel(", model_name_, ", version ", version, ", include_parameters)");
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(what, ": ", status.error_message()));
  }
  if (response.model().versions_size() != 1 || response.model().versions(0).version() != version) {
    return absl::InternalError(absl::StrCat(what, " returned ", response.model().versions_size(),
                                            " versions instead of that one"));
  }
  const v1::Parameters& exported = response.model().versions(0).parameters();
  absl::StatusOr<Parameters> parameters = Parameters::FromFlat(
      exported.feature_maps(), absl::MakeConstSpan(exported.values().data(), exported.values().size()));
  if (!parameters.ok()) {
    return absl::InternalError(absl::StrCat(what, " exported unusable parameters: ", parameters.status().message()));
  }
  // The whole reference set at once on this thread (no pool): the core's
  // results do not depend on the thread count, so this is what the server's
  // pool computes for any of these images.
  absl::StatusOr<std::vector<Prediction>> predictions =
      Predict(*parameters, ImageBatch::FromPixels(images_.images), nullptr);
  if (!predictions.ok()) {
    return absl::InternalError(
        absl::StrCat("the core's Predict on version ", version, ": ", predictions.status().message()));
  }
  return std::make_shared<const VersionReference>(
      VersionReference{version, *std::move(parameters), *std::move(predictions)});
}

}  // namespace convnet::load_testing
