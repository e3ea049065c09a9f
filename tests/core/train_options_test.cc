// ValidateTrainOptions (core/train_options.h): every bound of the
// hyperparameters, each error naming the field and the value.
#include "core/train_options.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

absl::Status Validate(const TrainOptions& options, size_t examples = 100) {
  return ValidateTrainOptions(options, examples);
}

void ExpectInvalid(const absl::Status& status, const std::string& field,
                   const std::string& value) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(field), HasSubstr("got " + value)));
}

TEST(TrainOptionsTest, DefaultsAreValid) { EXPECT_TRUE(Validate(TrainOptions{}).ok()); }

TEST(TrainOptionsTest, BoundaryValuesAreValid) {
  TrainOptions options;
  options.epochs = kMaxEpochs;
  options.batch_size = 100;
  options.l2 = 0.0;
  options.progress_every = 0;
  EXPECT_TRUE(Validate(options, 100).ok());
  options.epochs = 1;
  options.batch_size = 1;
  EXPECT_TRUE(Validate(options, 100).ok());
}

TEST(TrainOptionsTest, RejectsEpochsOutsideOneToMax) {
  TrainOptions options;
  options.epochs = 0;
  ExpectInvalid(Validate(options), "epochs", "0");
  options.epochs = kMaxEpochs + 1;
  ExpectInvalid(Validate(options), "epochs", "1001");
}

TEST(TrainOptionsTest, RejectsEmptyTrainingSet) {
  ExpectInvalid(Validate(TrainOptions{}, 0), "training_examples", "0");
}

TEST(TrainOptionsTest, RejectsBatchSizeOutsideOneToTrainingSetSize) {
  TrainOptions options;
  options.batch_size = 0;
  ExpectInvalid(Validate(options, 100), "batch_size", "0");
  options.batch_size = 101;
  ExpectInvalid(Validate(options, 100), "batch_size", "101");
}

TEST(TrainOptionsTest, RejectsNonPositiveOrNonFiniteLearningRate) {
  TrainOptions options;
  options.learning_rate = -1;
  ExpectInvalid(Validate(options), "learning_rate must be a finite number in (0, 100]", "-1");
  options.learning_rate = 0;
  ExpectInvalid(Validate(options), "learning_rate", "0");
  options.learning_rate = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid(Validate(options), "learning_rate", "nan");
  options.learning_rate = std::numeric_limits<double>::infinity();
  ExpectInvalid(Validate(options), "learning_rate", "inf");
}

TEST(TrainOptionsTest, RejectsNegativeOrNonFiniteL2) {
  TrainOptions options;
  options.l2 = -0.5;
  ExpectInvalid(Validate(options), "l2", "-0.5");
  options.l2 = std::numeric_limits<double>::infinity();
  ExpectInvalid(Validate(options), "l2", "inf");
}

TEST(TrainOptionsTest, AcceptsTheUpperBoundsOfLearningRateAndL2) {
  TrainOptions options;
  options.learning_rate = kMaxLearningRate;
  options.l2 = kMaxL2;
  EXPECT_TRUE(Validate(options).ok());
}

TEST(TrainOptionsTest, RejectsLearningRateAboveTheBoundNamingIt) {
  TrainOptions options;
  options.learning_rate = 1e300;
  ExpectInvalid(Validate(options), "learning_rate must be a finite number in (0, 100]", "1e+300");
  options.learning_rate = std::nextafter(kMaxLearningRate, 1e9);
  EXPECT_EQ(Validate(options).code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainOptionsTest, RejectsL2AboveTheBoundNamingIt) {
  TrainOptions options;
  options.l2 = 1e5;
  ExpectInvalid(Validate(options), "l2 must be a finite number in [0, 10000]", "100000");
}

TEST(TrainOptionsTest, WithoutTrainingSetChecksEveryOtherBound) {
  TrainOptions options;
  options.batch_size = 1000000;
  EXPECT_TRUE(ValidateTrainOptions(options).ok());
  options.batch_size = 0;
  ExpectInvalid(ValidateTrainOptions(options), "batch_size must be >= 1", "0");
}

TEST(TrainOptionsTest, RejectsNegativeProgressEvery) {
  TrainOptions options;
  options.progress_every = -3;
  ExpectInvalid(Validate(options), "progress_every", "-3");
}

TEST(TrainOptionsTest, RejectsUnknownCostValue) {
  TrainOptions options;
  options.cost = static_cast<Cost>(7);
  ExpectInvalid(Validate(options), "cost", "7");
}

}  // namespace
}  // namespace convnet
