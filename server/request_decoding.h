// Decoding and validating requests into core types, so that each handler
// only dispatches. A field's error is INVALID_ARGUMENT (RESOURCE_EXHAUSTED for
// a count over a server limit) with a message that names the field by its
// path in the request (e.g. "examples[3].image.pixels") and the offending
// value. The whole-request decoders (DecodeTrainRequest,
// DecodeGradientsRequest) also resolve the stored versions and datasets a
// request names, and pass on the errors of those lookups.
#ifndef CONVNET_SERVER_REQUEST_DECODING_H_
#define CONVNET_SERVER_REQUEST_DECODING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "convnet/v1/convnet.pb.h"
#include "core/cost.h"
#include "core/image_batch.h"
#include "core/parameters.h"
#include "core/train_options.h"
#include "server/dataset_registry.h"
#include "server/job_manager.h"
#include "server/model_repository.h"

namespace convnet::server {

// A batch of decoded images. It may point into the request it was decoded
// from (a single image is not copied), so it must not outlive that request.
class DecodedImages {
 public:
  DecodedImages() = default;
  // Movable (the views stay valid: a moved vector keeps its buffer), not copyable.
  DecodedImages(DecodedImages&&) = default;
  DecodedImages& operator=(DecodedImages&&) = default;
  DecodedImages(const DecodedImages&) = delete;
  DecodedImages& operator=(const DecodedImages&) = delete;

  size_t size() const { return count_; }
  bool is_float() const { return is_float_; }
  ImageBatch batch() const {
    return is_float_ ? ImageBatch::FromFloats(values_) : ImageBatch::FromPixels(pixels_);
  }
  // The pixels, for building a Dataset (only when !is_float()).
  std::vector<uint8_t> TakePixels() &&;

 private:
  friend class ImageDecoder;
  size_t count_ = 0;
  bool is_float_ = false;
  std::vector<uint8_t> owned_pixels_;
  std::vector<float> owned_values_;
  absl::Span<const uint8_t> pixels_;
  absl::Span<const float> values_;
};

// images: 1.. images, all of one encoding, each 784 bytes or 784 floats in
// [0, 1]. `field` is the repeated field's path ("images"). An empty list is
// INVALID_ARGUMENT; more than `max_count` images is RESOURCE_EXHAUSTED, with a
// message naming the server flag that sets the limit (`limit_flag`, e.g.
// "--max_batch"). The count is checked before any image is looked at.
absl::StatusOr<DecodedImages> DecodeImages(absl::string_view field,
                                           const google::protobuf::RepeatedPtrField<v1::Image>& images,
                                           size_t max_count, absl::string_view limit_flag);

struct DecodedExamples {
  DecodedImages images;
  std::vector<uint8_t> labels;
};

// examples: as DecodeImages for examples[i].image, plus labels in 0..9.
absl::StatusOr<DecodedExamples> DecodeExamples(
    absl::string_view field, const google::protobuf::RepeatedPtrField<v1::Example>& examples,
    size_t max_count, absl::string_view limit_flag);

// COST_QUADRATIC / COST_CROSS_ENTROPY; COST_UNSPECIFIED and unknown values
// are INVALID_ARGUMENT.
absl::StatusOr<Cost> DecodeCost(absl::string_view field, int cost);

// K in 1..64 (core's ValidateFeatureMaps), exactly ParameterCount(K) finite values.
absl::StatusOr<Parameters> DecodeParameters(absl::string_view field, const v1::Parameters& parameters);

// `status` with its message prefixed by "<field>." (core's messages start
// with the core field's name: "learning_rate must be ..."); OK stays OK.
absl::Status WithFieldPath(absl::string_view field, const absl::Status& status);

// The hyperparameters: a field left at its proto3 zero value takes the
// default of core's TrainOptions (the seed excepted: 0 is a seed), then
// core's ValidateTrainOptions checks every bound that does not depend on the
// training set; its message is prefixed with `field`.
absl::StatusOr<TrainOptions> DecodeHyperparameters(absl::string_view field,
                                                   const v1::Hyperparameters& hyperparameters);
// Core's ValidateTrainOptions with the training-set size (batch_size at most
// `training_examples`), its message prefixed with `field`.
absl::Status CheckBatchSize(absl::string_view field, const TrainOptions& options, size_t training_examples);

// A version field: >= 0 (0 = latest).
absl::Status ValidateVersion(absl::string_view field, int64_t version);

// What a TrainRequest's names are resolved against, and the server's limit
// on inline examples. The pointers are borrowed for the call; neither is null.
struct TrainSources {
  const ModelRepository* repository;  // resolves init_from
  DatasetRegistry* datasets;          // resolves train_dataset and eval_dataset (loading on first use)
  size_t max_inline_examples;         // per inline training or evaluation set (--max_inline_examples)
};

// The job a TrainRequest asks for, ready for JobManager::Submit. The request
// is checked in this order, and everything that does not need the training
// set comes before any dataset is loaded: model_name, hyperparameters, the
// initialization (feature_maps: a network initialized with the seed;
// init_from: a stored version, its model_name defaulting to the request's),
// the training data, the evaluation data (optional), then the batch size
// against the training set's size. Errors:
// - INVALID_ARGUMENT naming the field, for a bad field, an unset
//   initialization or training_data, or inline examples sent as values;
// - RESOURCE_EXHAUSTED for more than `max_inline_examples` inline examples;
// - the repository's error for init_from, its message prefixed "init_from: ";
//   FAILED_PRECONDITION when that version holds a non-finite parameter;
// - the dataset registry's errors for a named dataset; FAILED_PRECONDITION
//   when the training set is empty.
// The spec owns its data (or shares it with the repository and the registry):
// it may outlive the request.
absl::StatusOr<JobSpec> DecodeTrainRequest(const v1::TrainRequest& request, const TrainSources& sources);

// A GetGradientsRequest's inputs.
struct DecodedGradientsRequest {
  DecodedExamples examples;                      // may point into the request
  Cost cost = Cost::kCrossEntropy;
  std::shared_ptr<const Parameters> parameters;  // never null
  // The stored version the parameters are (parameters_source model);
  // "" and 0 for inline parameters.
  std::string model_name;
  int64_t version = 0;
};

// examples (1..`max_batch`, as DecodeExamples, limit flag --max_batch), cost,
// then parameters_source: model (a stored version, looked up in `repository`,
// whose error is passed on) or parameters (inline, as DecodeParameters);
// INVALID_ARGUMENT when neither is set. The result may point into the
// request: it must not outlive it.
absl::StatusOr<DecodedGradientsRequest> DecodeGradientsRequest(const v1::GetGradientsRequest& request,
                                                               const ModelRepository& repository,
                                                               size_t max_batch);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_REQUEST_DECODING_H_
