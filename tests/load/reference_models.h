// What each published version of a model must answer, computed in the test
// process by the core (the same Predict and ComputeGradient the server runs)
// from the version's parameters, exported once through GetModel.
#ifndef CONVNET_TESTS_LOAD_REFERENCE_MODELS_H_
#define CONVNET_TESTS_LOAD_REFERENCE_MODELS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "core/dataset.h"
#include "core/network.h"
#include "core/parameters.h"
#include "grpcpp/channel.h"

namespace convnet::load_testing {

// One version: its parameters and its prediction for every reference image.
struct VersionReference {
  int64_t version = 0;
  Parameters parameters;
  std::vector<Prediction> predictions;  // predictions[i] is for reference image i
};

class ReferenceModels {
 public:
  // `images` (the reference images, e.g. the bundled MNIST test set) must
  // outlive this object.
  ReferenceModels(std::shared_ptr<grpc::Channel> channel, std::string model_name, const Dataset& images);

  // The reference of `version` (> 0): exported and computed on the first call
  // for that version (other callers wait for it), cached afterwards. The
  // export's gRPC status is returned as an absl::Status (with the version in
  // the message) when GetModel fails.
  absl::StatusOr<std::shared_ptr<const VersionReference>> Get(int64_t version);

  const Dataset& images() const { return images_; }

 private:
  absl::StatusOr<std::shared_ptr<const VersionReference>> Compute(int64_t version);

  std::unique_ptr<v1::ConvNet::Stub> stub_;
  const std::string model_name_;
  const Dataset& images_;
  absl::Mutex mutex_;  // held while a version is computed, so each is computed once
  std::map<int64_t, std::shared_ptr<const VersionReference>> versions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace convnet::load_testing

#endif  // CONVNET_TESTS_LOAD_REFERENCE_MODELS_H_
