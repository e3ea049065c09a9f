#include "core/network.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "absl/strings/str_format.h"
#include "core/gradient_sum.h"
#include "core/kernels.h"
#include "core/reference.h"
#include "core/sigmoid.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

// Images per ParallelFor task in Predict: large enough to amortise the
// hand-off. Also the examples between two StopToken checks in ExplainGradient.
constexpr size_t kPredictTask = 16;

// This thread's workspace for K maps, reused across calls.
Workspace& ThreadWorkspace(int k) {
  thread_local std::unique_ptr<Workspace> ws;
  if (ws == nullptr || ws->k != k) ws = std::make_unique<Workspace>(k);
  return *ws;
}

absl::Status ValidateExamples(const ImageBatch& images, absl::Span<const uint8_t> labels) {
  CONVNET_RETURN_IF_ERROR(images.Validate());
  if (images.size() == 0) return absl::InvalidArgumentError("the batch holds no examples");
  if (labels.size() != images.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("got %d labels for %d images", labels.size(), images.size()));
  }
  return ValidateLabels(labels);
}

}  // namespace

absl::Status ValidateLabels(absl::Span<const uint8_t> labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kClasses) {
      return absl::InvalidArgumentError(
          absl::StrFormat("label %d must be in 0..9, got %d", i, labels[i]));
    }
  }
  return absl::OkStatus();
}

double ExampleCost(Cost cost, const float* z3, int label) {
  double z[kClasses], a[kClasses];
  for (int l = 0; l < kClasses; ++l) {
    z[l] = z3[l];
    a[l] = Sigmoid(z[l]);
  }
  return example_cost<double>(cost, z, a, label);
}

absl::StatusOr<std::vector<Prediction>> Predict(const Parameters& params, const ImageBatch& images,
                                                ThreadPool* pool, const StopToken& stop) {
  CONVNET_RETURN_IF_ERROR(images.Validate());
  const size_t n = images.size();
  std::vector<Prediction> out(n);
  const int k = params.k();
  StopCheck check(stop);
  auto run = [&](size_t task) {
    if (check.ShouldStop()) return;
    Workspace& ws = ThreadWorkspace(k);
    const size_t begin = task * kPredictTask;
    const size_t end = std::min(n, begin + kPredictTask);
    if (end - begin == 1) {  // one image: sigma(z3) straight from registers
      LoadImage(images, begin, ws);
      ForwardExample(params.w1(), params.b1(), params.w3(), params.b3(), ws);
      std::copy_n(ws.a3.begin(), kClasses, out[begin].a3.begin());
      out[begin].predicted_class = PredictedClass(ws.a3.data());
      check.Done(1);
      return;
    }
    // z3 of the task's images side by side, then a3 = sigma(z3) for all of
    // them in one loop.
    alignas(32) float z3[kPredictTask * kClasses + 8], a3[kPredictTask * kClasses + 8];
    ForwardImagesToZ3(images, begin, end - begin, params.w1(), params.b1(), params.w3(), params.b3(), ws, z3);
    OutputActivations(end - begin, z3, a3);
    for (size_t i = begin; i < end; ++i) {
      const float* image_a3 = a3 + (i - begin) * kClasses;
      std::copy_n(image_a3, kClasses, out[i].a3.begin());
      out[i].predicted_class = PredictedClass(image_a3);
    }
    check.Done(end - begin);
  };
  const size_t tasks = (n + kPredictTask - 1) / kPredictTask;
  if (pool != nullptr && tasks > 1) {
    pool->ParallelFor(tasks, run);
  } else {
    for (size_t t = 0; t < tasks; ++t) run(t);
  }
  CONVNET_RETURN_IF_ERROR(check.status("Predict", n, "images"));
  return out;
}

absl::StatusOr<BatchGradient> ComputeGradient(const Parameters& params, const ImageBatch& images,
                                              absl::Span<const uint8_t> labels, Cost cost,
                                              ThreadPool* pool, const StopToken& stop) {
  CONVNET_RETURN_IF_ERROR(ValidateExamples(images, labels));
  const size_t m = images.size();
  std::vector<uint32_t> indices(m);
  std::iota(indices.begin(), indices.end(), 0u);
  BatchGradient result;
  result.costs.resize(m);
  result.predicted.resize(m);
  result.gradient.resize(params.size());
  GradientSum gradient_sum(params.k());
  StopCheck check(stop);
  gradient_sum.Compute(params, images, labels.data(), indices.data(), m, cost, pool,
                       result.gradient.data(), result.costs.data(), result.predicted.data(), &check);
  CONVNET_RETURN_IF_ERROR(check.status("ComputeGradient", m, "examples"));
  // The gradient of the mean cost: the sum divided by m.
  const float m_float = static_cast<float>(m);
  for (float& g : result.gradient) g /= m_float;
  result.mean_cost = std::accumulate(result.costs.begin(), result.costs.end(), 0.0) / m;
  return result;
}

absl::StatusOr<std::pair<BatchGradient, std::vector<Explanation>>> ExplainGradient(
    const Parameters& params, const ImageBatch& images, absl::Span<const uint8_t> labels, Cost cost,
    ThreadPool* pool, const StopToken& stop) {
  CONVNET_ASSIGN_OR_RETURN(BatchGradient gradient, ComputeGradient(params, images, labels, cost, pool, stop));
  const int k = params.k();
  const size_t n = images.size();
  std::vector<Explanation> explanations(n);
  Workspace ws(k);
  std::vector<float> scratch(params.size());
  StopCheck check(stop);
  for (size_t begin = 0; begin < n; begin += kPredictTask) {
    if (check.ShouldStop()) break;
    const size_t end = std::min(n, begin + kPredictTask);
    for (size_t i = begin; i < end; ++i) {
      LoadImage(images, i, ws);
      ForwardExample(params.w1(), params.b1(), params.w3(), params.b3(), ws);
      BackwardExample(params.w3(), labels[i], cost, ws, scratch.data());
      Explanation& e = explanations[i];
      std::copy_n(ws.z3.begin(), kClasses, e.z3.begin());
      std::copy_n(ws.a3.begin(), kClasses, e.a3.begin());
      std::copy_n(ws.delta3.begin(), kClasses, e.delta3.begin());
      e.delta1.resize(static_cast<size_t>(k) * kConvSize);
      Delta1(ws, e.delta1.data());
      e.argmax_mask = ArgmaxToMask(k, ws.argmax.data());
      e.cost = gradient.costs[i];
    }
    check.Done(end - begin);
  }
  CONVNET_RETURN_IF_ERROR(check.status("ExplainGradient", n, "explanations"));
  return std::make_pair(std::move(gradient), std::move(explanations));
}

}  // namespace convnet
