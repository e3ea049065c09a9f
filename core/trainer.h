// Mini-batch SGD (NETWORK.md, "Mini-batch gradient and SGD") with per-epoch
// evaluation, progress reports and cancellation.
//
// Deterministic: the same initial parameters, data, options and seed give
// bit-identical parameters whatever the number of threads. Every mini-batch is
// cut into fixed chunks of examples (independent of the thread count), each
// chunk's gradient is summed in example order, and the chunks are added in
// chunk order.
#ifndef CONVNET_CORE_TRAINER_H_
#define CONVNET_CORE_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset.h"
#include "core/parameters.h"
#include "core/thread_pool.h"
#include "core/train_options.h"

namespace convnet {

struct TrainProgress {
  int epoch = 0;                // 1-based epoch in progress
  int64_t samples_done = 0;     // training samples processed in this epoch
  int64_t samples_total = 0;    // training samples per epoch
  double running_cost = 0.0;    // mean training cost so far in this epoch
};

struct TrainResult {
  Parameters parameters;
  std::vector<EpochMetrics> epochs;
};

struct TrainCallbacks {
  // Called every options.progress_every samples and at the end of each epoch's training.
  std::function<void(const TrainProgress&)> on_progress;
  // Called after each epoch's evaluation, with that epoch's metrics.
  std::function<void(const EpochMetrics&)> on_epoch;
};

// Trains `initial` on `train`, evaluating on `test` after every epoch (when
// test is non-null and non-empty). Checks `cancel` between mini-batches and
// returns CANCELLED when it becomes true. INVALID_ARGUMENT for options that
// fail ValidateTrainOptions; FAILED_PRECONDITION when `initial` holds a
// non-finite value, and "diverged at epoch <e>: ..." when an epoch's training
// cost or the parameters after it are not finite (checked after every
// epoch's training, before its evaluation and on_epoch): a diverged run
// returns no parameters. `pool` may be null.
absl::StatusOr<TrainResult> Train(const Parameters& initial, const Dataset& train, const Dataset* test,
                                  const TrainOptions& options, ThreadPool* pool,
                                  const TrainCallbacks& callbacks = {},
                                  const std::atomic<bool>* cancel = nullptr);

struct Evaluation {
  double accuracy = 0.0;   // fraction correct
  double mean_cost = 0.0;
  int64_t examples = 0;
};

// Accuracy and mean cost of `params` on `data`.
Evaluation Evaluate(const Parameters& params, const Dataset& data, Cost cost, ThreadPool* pool);

}  // namespace convnet

#endif  // CONVNET_CORE_TRAINER_H_
