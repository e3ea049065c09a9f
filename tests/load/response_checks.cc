#include "response_checks.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cost.h"
#include "core/image_batch.h"
#include "core/network.h"
#include "core/shape.h"

namespace convnet::load_testing {

absl::Status CheckPredictResponse(const VersionReference& reference, absl::Span<const size_t> indices,
                                  const v1::PredictResponse& response) {
  const std::string what = absl::StrCat("Predict answered by version ", reference.version);
  if (static_cast<size_t>(response.predictions_size()) != indices.size()) {
    return absl::InternalError(absl::StrCat(what, ": ", response.predictions_size(), " predictions for ",
                                            indices.size(), " images"));
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    const v1::ImagePrediction& got = response.predictions(static_cast<int>(i));
    const Prediction& expected = reference.predictions[indices[i]];
    if (got.outputs_size() != kClasses) {
      return absl::InternalError(absl::StrCat(what, ": predictions[", i, "] has ", got.outputs_size(), " outputs"));
    }
    for (int c = 0; c < kClasses; ++c) {
      if (got.outputs(c) != expected.a3[c]) {
        return absl::InternalError(absl::StrCat(what, ": predictions[", i, "] (reference image ", indices[i],
                                                ") outputs[", c, "] = ", got.outputs(c), ", the version computes ",
                                                expected.a3[c]));
      }
    }
    if (got.predicted_class() != expected.predicted_class) {
      return absl::InternalError(absl::StrCat(what, ": predictions[", i, "] class ", got.predicted_class(),
                                              ", the version computes ", expected.predicted_class));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckGradientsResponse(const VersionReference& reference, const Dataset& images,
                                    absl::Span<const size_t> indices, const v1::GetGradientsResponse& response) {
  const std::string what = absl::StrCat("GetGradients answered by version ", reference.version);
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  for (size_t index : indices) {
    absl::Span<const uint8_t> image = images.image(index);
    pixels.insert(pixels.end(), image.begin(), image.end());
    labels.push_back(images.labels[index]);
  }
  absl::StatusOr<BatchGradient> expected = ComputeGradient(reference.parameters, ImageBatch::FromPixels(pixels),
                                                           labels, Cost::kCrossEntropy, nullptr);
  if (!expected.ok()) {
    return absl::InternalError(absl::StrCat(what, ": the core's ComputeGradient failed: ",
                                            expected.status().message()));
  }
  if (response.feature_maps() != reference.parameters.k()) {
    return absl::InternalError(absl::StrCat(what, ": K ", response.feature_maps(), ", the version has K ",
                                            reference.parameters.k()));
  }
  if (response.mean_cost() != expected->mean_cost) {
    return absl::InternalError(absl::StrCat(what, ": mean_cost ", response.mean_cost(), ", the core computes ",
                                            expected->mean_cost));
  }
  if (static_cast<size_t>(response.costs_size()) != indices.size() ||
      static_cast<size_t>(response.predicted_classes_size()) != indices.size()) {
    return absl::InternalError(absl::StrCat(what, ": ", response.costs_size(), " costs and ",
                                            response.predicted_classes_size(), " classes for ", indices.size(),
                                            " examples"));
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    if (response.costs(static_cast<int>(i)) != expected->costs[i] ||
        response.predicted_classes(static_cast<int>(i)) != expected->predicted[i]) {
      return absl::InternalError(absl::StrCat(what, ": example ", i, " cost ", response.costs(static_cast<int>(i)),
                                              " class ", response.predicted_classes(static_cast<int>(i)),
                                              ", the core computes ", expected->costs[i], " class ",
                                              expected->predicted[i]));
    }
  }
  if (static_cast<size_t>(response.gradient_size()) != expected->gradient.size()) {
    return absl::InternalError(absl::StrCat(what, ": ", response.gradient_size(), " gradient values, expected ",
                                            expected->gradient.size()));
  }
  for (size_t j = 0; j < expected->gradient.size(); ++j) {
    if (response.gradient(static_cast<int>(j)) != expected->gradient[j]) {
      return absl::InternalError(absl::StrCat(what, ": gradient[", j, "] = ", response.gradient(static_cast<int>(j)),
                                              ", the core computes ", expected->gradient[j]));
    }
  }
  return absl::OkStatus();
}

}  // namespace convnet::load_testing
