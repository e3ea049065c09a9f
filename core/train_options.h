// What a training run is asked to do and what it reports: the hyperparameters
// (TrainOptions) and the per-epoch metrics. Both are stored in model files.
#ifndef CONVNET_CORE_TRAIN_OPTIONS_H_
#define CONVNET_CORE_TRAIN_OPTIONS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/cost.h"

namespace convnet {

// The bounds of the hyperparameters. Larger steps than these only diverge:
// the weight decay factor 1 - eta * lambda / n must not flip the weights'
// sign on every step by orders of magnitude.
inline constexpr int kMaxEpochs = 1000;
inline constexpr double kMaxLearningRate = 100.0;
inline constexpr double kMaxL2 = 1e4;

// The member initialisers are the defaults, also of the service for every
// hyperparameter a request leaves unset.
struct TrainOptions {
  int epochs = 1;               // passes over the training set, 1..kMaxEpochs
  int batch_size = 10;          // mini-batch size m, 1..training-set size
  double learning_rate = 0.5;   // eta in (0, kMaxLearningRate]
  double l2 = 0.0;              // lambda in [0, kMaxL2] (weights only; NETWORK.md)
  Cost cost = Cost::kCrossEntropy;
  uint64_t seed = 1;            // shuffle order (and init, when the caller initialises)
  // A progress callback is called about every this many training samples
  // (and at the end of each epoch). 0 means at the end of each epoch only.
  int progress_every = 1000;
};

// The one check of the hyperparameters: every bound that does not depend on
// the training set. INVALID_ARGUMENT with a message that starts with the
// field's name and ends with the value ("learning_rate must be a finite
// number in (0, 100], got 1e+300"), so that callers can prefix a path.
absl::Status ValidateTrainOptions(const TrainOptions& options);

// As above, and batch_size at most `training_examples` (which must be > 0).
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
