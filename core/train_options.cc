#include "core/train_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace convnet {

absl::Status ValidateTrainOptions(const TrainOptions& options) {
  if (options.epochs < 1 || options.epochs > kMaxEpochs) {
    return absl::InvalidArgumentError(
        absl::StrCat("epochs must be in 1..", kMaxEpochs, ", got ", options.epochs));
  }
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size must be >= 1, got ", options.batch_size));
  }
  if (!std::isfinite(options.learning_rate) || options.learning_rate <= 0 ||
      options.learning_rate > kMaxLearningRate) {
    return absl::InvalidArgumentError(absl::StrCat("learning_rate must be a finite number in (0, ",
                                                   kMaxLearningRate, "], got ",
                                                   options.learning_rate));
  }
  if (!std::isfinite(options.l2) || options.l2 < 0 || options.l2 > kMaxL2) {
    return absl::InvalidArgumentError(absl::StrCat("l2 must be a finite number in [0, ", kMaxL2,
                                                   "], got ", options.l2));
  }
  if (options.cost != Cost::kQuadratic && options.cost != Cost::kCrossEntropy) {
    return absl::InvalidArgumentError(
        absl::StrCat("cost must be quadratic or cross_entropy, got ", static_cast<int>(options.cost)));
  }
  if (options.progress_every < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("progress_every must be >= 0, got ", options.progress_every));
  }
  return absl::OkStatus();
}

absl::Status ValidateTrainOptions(const TrainOptions& options, size_t training_examples) {
  if (training_examples == 0) {
    return absl::InvalidArgumentError("training_examples must be > 0, got 0");
  }
  if (absl::Status status = ValidateTrainOptions(options); !status.ok()) return status;
  if (static_cast<size_t>(options.batch_size) > training_examples) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size must be at most the training-set size ",
                                                   training_examples, ", got ", options.batch_size));
  }
  return absl::OkStatus();
}

}  // namespace convnet
