#include "core/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/gradient_sum.h"
#include "core/kernels.h"
#include "core/network.h"
#include "core/random.h"
#include "core/status_macros.h"

namespace convnet {
namespace {

// Images per ParallelFor task in Evaluate.
constexpr size_t kEvaluateTask = 256;

// w <- (1 - eta lambda / n) w - (eta / m) sum_x dC_x/dw   (weights)
// b <- b - (eta / m) sum_x dC_x/db                        (biases)
void SgdStep(const float* gradient_sum, size_t m, size_t n, const TrainOptions& options,
             Parameters& params) {
  const int k = params.k();
  const float step = static_cast<float>(options.learning_rate / static_cast<double>(m));
  const float decay =
      static_cast<float>(1.0 - options.learning_rate * options.l2 / static_cast<double>(n));
  float* values = params.mutable_flat().data();
  const size_t w1_end = Parameters::B1Offset(k), b1_end = Parameters::W3Offset(k);
  const size_t w3_end = Parameters::B3Offset(k), b3_end = ParameterCount(k);
  auto update_weights = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) values[i] = decay * values[i] - step * gradient_sum[i];
  };
  auto update_biases = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) values[i] = values[i] - step * gradient_sum[i];
  };
  update_weights(0, w1_end);
  update_biases(w1_end, b1_end);
  update_weights(b1_end, w3_end);
  update_biases(w3_end, b3_end);
}

// FAILED_PRECONDITION when the epoch's training cost or the parameters are no
// longer finite: the steps were too large, and every later epoch would only
// carry NaN forward.
absl::Status CheckNotDiverged(int epoch, double train_cost, const Parameters& params) {
  std::string what;
  if (!std::isfinite(train_cost)) {
    what = absl::StrCat("training cost not finite (", train_cost, ")");
  } else if (const std::optional<size_t> i = FindNonFinite(params.flat())) {
    what = absl::StrCat("parameters not finite (parameter ", *i, " is ", params.flat()[*i], ")");
  } else {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("diverged at epoch ", epoch, ": ", what, "; try a smaller learning_rate or l2"));
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Evaluation Evaluate(const Parameters& params, const Dataset& data, Cost cost, ThreadPool* pool) {
  Evaluation result;
  result.examples = static_cast<int64_t>(data.size());
  if (data.size() == 0) return result;
  const ImageBatch images = ImageBatch::FromPixels(data.images);
  const size_t tasks = (data.size() + kEvaluateTask - 1) / kEvaluateTask;
  std::vector<int64_t> correct(tasks, 0);
  std::vector<double> costs(tasks, 0.0);
  const int k = params.k();
  auto run = [&](size_t task) {
    Workspace ws(k);
    const size_t end = std::min(data.size(), (task + 1) * kEvaluateTask);
    for (size_t i = task * kEvaluateTask; i < end; ++i) {
      LoadImage(images, i, ws);
      ForwardExample(params.w1(), params.b1(), params.w3(), params.b3(), ws);
      correct[task] += PredictedClass(ws.a3.data()) == data.labels[i];
      costs[task] += ExampleCost(cost, ws.z3.data(), data.labels[i]);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(tasks, run);
  } else {
    for (size_t t = 0; t < tasks; ++t) run(t);
  }
  // Summed in task order, so the figures do not depend on the thread count.
  const int64_t total_correct = std::accumulate(correct.begin(), correct.end(), int64_t{0});
  const double total_cost = std::accumulate(costs.begin(), costs.end(), 0.0);
  result.accuracy = static_cast<double>(total_correct) / static_cast<double>(data.size());
  result.mean_cost = total_cost / static_cast<double>(data.size());
  return result;
}

absl::StatusOr<TrainResult> Train(const Parameters& initial, const Dataset& train, const Dataset* test,
                                  const TrainOptions& options, ThreadPool* pool,
                                  const TrainCallbacks& callbacks, const std::atomic<bool>* cancel) {
  CONVNET_RETURN_IF_ERROR(ValidateTrainOptions(options, train.size()));
  if (const std::optional<size_t> i = FindNonFinite(initial.flat())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the initial parameters are not finite (parameter ", *i, " is ", initial.flat()[*i], ")"));
  }
  CONVNET_RETURN_IF_ERROR(ValidateLabels(train.labels));
  if (train.images.size() != train.size() * kPixels) {
    return absl::InvalidArgumentError("training images and labels differ in count");
  }
  const size_t n = train.size();
  const size_t m = static_cast<size_t>(options.batch_size);
  const ImageBatch images = ImageBatch::FromPixels(train.images);

  TrainResult result{initial, {}};
  Parameters& params = result.parameters;
  GradientSum gradient_sum(params.k());
  std::vector<float> sum(params.size());
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  Random random(options.seed);

  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    random.Shuffle(order.data(), n);
    double cost_sum = 0.0;
    size_t next_report = options.progress_every > 0 ? static_cast<size_t>(options.progress_every) : n;
    for (size_t start = 0; start < n; start += m) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return absl::CancelledError("training was cancelled");
      }
      const size_t batch = std::min(m, n - start);
      cost_sum += gradient_sum.Compute(params, images, train.labels.data(), order.data() + start, batch,
                                       options.cost, pool, sum.data());
      SgdStep(sum.data(), batch, n, options, params);
      const size_t done = start + batch;
      if (callbacks.on_progress && (done >= next_report || done == n)) {
        callbacks.on_progress(TrainProgress{epoch, static_cast<int64_t>(done), static_cast<int64_t>(n),
                                            cost_sum / static_cast<double>(done)});
        while (next_report <= done) next_report += options.progress_every > 0 ? options.progress_every : n;
      }
    }
    EpochMetrics metrics;
    metrics.epoch = epoch;
    metrics.train_cost = cost_sum / static_cast<double>(n);
    CONVNET_RETURN_IF_ERROR(CheckNotDiverged(epoch, metrics.train_cost, params));
    if (test != nullptr && test->size() > 0) {
      const Evaluation evaluation = Evaluate(params, *test, options.cost, pool);
      metrics.test_accuracy = evaluation.accuracy;
      metrics.test_cost = evaluation.mean_cost;
      metrics.test_examples = evaluation.examples;
    }
    metrics.seconds = Seconds(epoch_start);
    result.epochs.push_back(metrics);
    if (callbacks.on_epoch) callbacks.on_epoch(metrics);
  }
  return result;
}

}  // namespace convnet
