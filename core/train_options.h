// What a training run is asked to do and what it reports: the hyperparameters
// (TrainOptions) and the per-epoch metrics. Both are stored in model files.
#ifndef CONVNET_CORE_TRAIN_OPTIONS_H_
#define CONVNET_CORE_TRAIN_OPTIONS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/cost.h"

namespace convnet {

inline constexpr int kMaxEpochs = 1000;

struct TrainOptions {
  int epochs = 1;               // passes over the training set, 1..kMaxEpochs
  int batch_size = 10;          // mini-batch size m, 1..training-set size
  double learning_rate = 0.5;   // eta > 0
  double l2 = 0.0;              // lambda >= 0 (weights only; NETWORK.md)
  Cost cost = Cost::kCrossEntropy;
  uint64_t seed = 1;            // shuffle order (and init, when the caller initialises)
  // A progress callback is called about every this many training samples
  // (and at the end of each epoch). 0 means at the end of each epoch only.
  int progress_every = 1000;
};

// INVALID_ARGUMENT naming the field and value when an option is out of range.
// `training_examples` is the size of the training set (bounds batch_size).
absl::Status ValidateTrainOptions(const TrainOptions& options, size_t training_examples);

struct EpochMetrics {
  int epoch = 0;                 // 1-based
  double train_cost = 0.0;       // mean cost over the epoch's training examples
  double test_accuracy = 0.0;    // fraction in [0, 1]; 0 when there is no test set
  double test_cost = 0.0;        // mean cost over the test set
  int64_t test_examples = 0;     // 0 when no test set was given
  double seconds = 0.0;          // wall time of the epoch (training + evaluation)
};

}  // namespace convnet

#endif  // CONVNET_CORE_TRAIN_OPTIONS_H_
