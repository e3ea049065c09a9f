// Stopping the batch entry points of network.h with a StopToken: a deadline
// that has passed stops them before any work, a deadline far away changes no
// bit of their results, and a cancel flag set from another thread, or a cancel
// check that only the calling thread can answer, stops a large batch part-way,
// without computing the rest.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/image_batch.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/stop_token.h"
#include "core/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/test_data.h"

namespace convnet {
namespace {

using ::testing::HasSubstr;

// The first n test images of MNIST, repeated as often as needed.
struct Batch {
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  ImageBatch images() const { return ImageBatch::FromPixels(pixels); }
};

Batch MnistBatch(size_t n) {
  const Dataset& test = testing::BundledMnist().test;
  Batch batch;
  batch.pixels.reserve(n * kPixels);
  for (size_t i = 0; i < n; ++i) {
    const size_t j = i % test.size();
    const auto image = test.image(j);
    batch.pixels.insert(batch.pixels.end(), image.begin(), image.end());
    batch.labels.push_back(test.labels[j]);
  }
  return batch;
}

Parameters MakeParameters(int k) {
  auto params = Parameters::Initialize(k, 5);
  EXPECT_TRUE(params.ok()) << params.status();
  return *std::move(params);
}

// The number N of "... stopped after N of <total> <noun>: <why>", or -1 when
// the message does not have that form.
long StoppedAfter(const absl::Status& status, size_t total, const std::string& noun, const std::string& why) {
  const std::regex pattern("stopped after ([0-9]+) of " + std::to_string(total) + " " + noun + ": " + why);
  std::smatch match;
  const std::string message(status.message());
  if (!std::regex_search(message, match, pattern)) return -1;
  return std::stol(match[1].str());
}

TEST(StopTokenTest, ADefaultTokenNeverFiresAndAPassedDeadlineDoes) {
  EXPECT_TRUE(StopToken().never());
  EXPECT_FALSE(StopToken().fired());
  EXPECT_FALSE(StopToken(absl::Now() + absl::Hours(1)).fired());
  EXPECT_TRUE(StopToken(absl::Now() - absl::Milliseconds(1)).fired());
  std::atomic<bool> cancelled{false};
  const StopToken token(absl::InfiniteFuture(), &cancelled);
  EXPECT_FALSE(token.never());
  EXPECT_FALSE(token.fired());
  cancelled = true;
  EXPECT_TRUE(token.fired());
  EXPECT_TRUE(token.cancelled());
}

TEST(StopTokenTest, ACancelCheckFiresTheTokenAndADeadlineWinsOverIt) {
  std::atomic<bool> says_cancelled{false};
  const StopToken checked(absl::InfiniteFuture(), nullptr, [&] { return says_cancelled.load(); });
  EXPECT_FALSE(checked.never());
  EXPECT_FALSE(checked.fired());
  says_cancelled = true;
  EXPECT_TRUE(checked.fired());
  EXPECT_TRUE(checked.cancelled());

  // A deadline that has passed also cancels a gRPC call: the reason reported
  // is the deadline.
  const Batch batch = MnistBatch(40);
  ThreadPool pool(2);
  const StopToken both(absl::InfinitePast(), nullptr, [] { return true; });
  auto gradient = ComputeGradient(MakeParameters(1), batch.images(), batch.labels, Cost::kQuadratic, &pool, both);
  ASSERT_EQ(gradient.status().code(), absl::StatusCode::kDeadlineExceeded) << gradient.status();
}

TEST(StopTest, APassedDeadlineStopsPredictBeforeAnyImage) {
  const Batch batch = MnistBatch(100);
  ThreadPool pool(2);
  const StopToken passed(absl::Now() - absl::Seconds(1));
  auto predictions = Predict(MakeParameters(1), batch.images(), &pool, passed);
  ASSERT_EQ(predictions.status().code(), absl::StatusCode::kDeadlineExceeded) << predictions.status();
  EXPECT_THAT(predictions.status().message(),
              HasSubstr("Predict stopped after 0 of 100 images: the deadline passed"));
}

TEST(StopTest, APassedDeadlineStopsComputeGradientAndExplainGradientBeforeAnyExample) {
  const Batch batch = MnistBatch(100);
  ThreadPool pool(2);
  const Parameters params = MakeParameters(2);
  const StopToken passed(absl::InfinitePast());
  auto gradient = ComputeGradient(params, batch.images(), batch.labels, Cost::kCrossEntropy, &pool, passed);
  ASSERT_EQ(gradient.status().code(), absl::StatusCode::kDeadlineExceeded) << gradient.status();
  EXPECT_THAT(gradient.status().message(),
              HasSubstr("ComputeGradient stopped after 0 of 100 examples: the deadline passed"));
  auto explained = ExplainGradient(params, batch.images(), batch.labels, Cost::kQuadratic, &pool, passed);
  ASSERT_EQ(explained.status().code(), absl::StatusCode::kDeadlineExceeded) << explained.status();
  EXPECT_THAT(explained.status().message(), HasSubstr("stopped after 0 of 100"));
}

TEST(StopTest, InvalidInputIsStillInvalidArgumentWhenTheDeadlineHasPassed) {
  const Batch batch = MnistBatch(3);
  const std::vector<uint8_t> two_labels = {1, 2};
  auto gradient = ComputeGradient(MakeParameters(1), batch.images(), two_labels, Cost::kQuadratic, nullptr,
                                  StopToken(absl::InfinitePast()));
  EXPECT_EQ(gradient.status().code(), absl::StatusCode::kInvalidArgument) << gradient.status();
}

// Sizes around the task and chunk boundaries (16 images per task, chunks of
// about 16 examples, the parallel gradient from 32 examples on).
class FarDeadlineTest : public ::testing::TestWithParam<size_t> {};

TEST_P(FarDeadlineTest, LeavesPredictBitIdentical) {
  const Batch batch = MnistBatch(GetParam());
  const Parameters params = MakeParameters(3);
  ThreadPool pool(2);
  std::atomic<bool> never_set{false};
  const StopToken far(absl::Now() + absl::Hours(1), &never_set);
  auto plain = Predict(params, batch.images(), &pool);
  auto watched = Predict(params, batch.images(), &pool, far);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(watched.ok()) << watched.status();
  ASSERT_EQ(plain->size(), watched->size());
  for (size_t i = 0; i < plain->size(); ++i) {
    EXPECT_EQ(std::memcmp((*plain)[i].a3.data(), (*watched)[i].a3.data(), sizeof(float) * kClasses), 0) << i;
    EXPECT_EQ((*plain)[i].predicted_class, (*watched)[i].predicted_class) << i;
  }
}

TEST_P(FarDeadlineTest, LeavesTheGradientAndTheExplanationsBitIdentical) {
  const Batch batch = MnistBatch(GetParam());
  const Parameters params = MakeParameters(2);
  ThreadPool pool(2);
  const StopToken far(absl::Now() + absl::Hours(1));
  auto plain = ExplainGradient(params, batch.images(), batch.labels, Cost::kCrossEntropy, &pool);
  auto watched = ExplainGradient(params, batch.images(), batch.labels, Cost::kCrossEntropy, &pool, far);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(watched.ok()) << watched.status();
  const BatchGradient& a = plain->first;
  const BatchGradient& b = watched->first;
  ASSERT_EQ(a.gradient.size(), b.gradient.size());
  EXPECT_EQ(std::memcmp(a.gradient.data(), b.gradient.data(), a.gradient.size() * sizeof(float)), 0);
  ASSERT_EQ(a.costs.size(), b.costs.size());
  EXPECT_EQ(std::memcmp(a.costs.data(), b.costs.data(), a.costs.size() * sizeof(double)), 0);
  EXPECT_EQ(a.predicted, b.predicted);
  EXPECT_EQ(std::memcmp(&a.mean_cost, &b.mean_cost, sizeof(double)), 0);
  ASSERT_EQ(plain->second.size(), watched->second.size());
  for (size_t i = 0; i < plain->second.size(); ++i) {
    const Explanation& x = plain->second[i];
    const Explanation& y = watched->second[i];
    EXPECT_EQ(std::memcmp(x.z3.data(), y.z3.data(), sizeof(float) * kClasses), 0) << i;
    EXPECT_EQ(std::memcmp(x.delta3.data(), y.delta3.data(), sizeof(float) * kClasses), 0) << i;
    EXPECT_EQ(x.delta1, y.delta1) << i;
    EXPECT_EQ(x.argmax_mask, y.argmax_mask) << i;
  }
  // ComputeGradient on its own, too.
  auto gradient = ComputeGradient(params, batch.images(), batch.labels, Cost::kCrossEntropy, &pool, far);
  ASSERT_TRUE(gradient.ok()) << gradient.status();
  EXPECT_EQ(std::memcmp(a.gradient.data(), gradient->gradient.data(), a.gradient.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(BatchSizes, FarDeadlineTest, ::testing::Values(1, 15, 16, 17, 33, 100));

// A batch that takes seconds (K = 64, thousands of examples); the flag is set
// from another thread while it runs. Were the flag ignored, the call would
// return every result; it must instead return CANCELLED having done only part.
constexpr int kBigMaps = 64;
constexpr size_t kBigBatch = 4000;     // examples of the gradient tests
constexpr size_t kBigPredict = 16000;  // images of the Predict test (a forward pass only)

// Sets a cancel flag from another thread 20 ms after construction; the
// destructor joins that thread.
class CancelSoon {
 public:
  CancelSoon()
      : thread_([this] {
          absl::SleepFor(absl::Milliseconds(20));
          cancelled_ = true;
        }) {}
  ~CancelSoon() { thread_.join(); }
  StopToken token() const { return StopToken(absl::InfiniteFuture(), &cancelled_); }

 private:
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

TEST(StopTest, AFlagSetFromAnotherThreadStopsALargePredictPartWay) {
  const Batch batch = MnistBatch(kBigPredict);
  const Parameters params = MakeParameters(kBigMaps);
  ThreadPool pool(2);
  absl::StatusOr<std::vector<Prediction>> predictions;
  {
    CancelSoon cancel;
    predictions = Predict(params, batch.images(), &pool, cancel.token());
  }
  ASSERT_EQ(predictions.status().code(), absl::StatusCode::kCancelled) << predictions.status();
  const long done = StoppedAfter(predictions.status(), kBigPredict, "images", "cancelled");
  EXPECT_GE(done, 0) << predictions.status();
  EXPECT_LT(done, static_cast<long>(kBigPredict)) << predictions.status();
  EXPECT_EQ(done % 16, 0) << "whole tasks of 16 images: " << predictions.status();
}

TEST(StopTest, AFlagSetFromAnotherThreadStopsALargeGradientPartWay) {
  const Batch batch = MnistBatch(kBigBatch);
  const Parameters params = MakeParameters(kBigMaps);
  ThreadPool pool(2);
  CancelSoon cancel;
  auto gradient = ComputeGradient(params, batch.images(), batch.labels, Cost::kQuadratic, &pool, cancel.token());
  ASSERT_EQ(gradient.status().code(), absl::StatusCode::kCancelled) << gradient.status();
  const long done = StoppedAfter(gradient.status(), kBigBatch, "examples", "cancelled");
  EXPECT_GE(done, 0) << gradient.status();
  EXPECT_LT(done, static_cast<long>(kBigBatch)) << gradient.status();
}

// As a server asks gRPC: the check answers on the calling thread only (false
// on the pool's), and the calling thread runs its share of the tasks; once it
// sees the cancellation, the pool's tasks stop too. The check says
// "cancelled" from the calling thread's second question on, once the pool's
// thread has asked at least once (so both threads are seen working).
TEST(StopTest, ACancelCheckAnsweredOnTheCallingThreadOnlyStopsALargeGradientPartWay) {
  const Batch batch = MnistBatch(kBigBatch);
  const Parameters params = MakeParameters(kBigMaps);
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> pool_questions{0}, caller_questions{0};
  const StopToken token(absl::InfiniteFuture(), nullptr, [&] {
    if (std::this_thread::get_id() != caller) {
      ++pool_questions;
      return false;
    }
    return ++caller_questions >= 2 && pool_questions.load() > 0;
  });
  auto gradient = ComputeGradient(params, batch.images(), batch.labels, Cost::kQuadratic, &pool, token);
  ASSERT_EQ(gradient.status().code(), absl::StatusCode::kCancelled) << gradient.status();
  const long done = StoppedAfter(gradient.status(), kBigBatch, "examples", "cancelled");
  EXPECT_GT(done, 0) << gradient.status();
  EXPECT_LT(done, static_cast<long>(kBigBatch) / 2) << gradient.status();
}

TEST(StopTest, ADeadlineThatPassesDuringALargeExplainGradientStopsIt) {
  const Batch batch = MnistBatch(kBigBatch);
  const Parameters params = MakeParameters(kBigMaps);
  auto explained = ExplainGradient(params, batch.images(), batch.labels, Cost::kCrossEntropy, nullptr,
                                   StopToken(absl::Now() + absl::Milliseconds(20)));
  ASSERT_EQ(explained.status().code(), absl::StatusCode::kDeadlineExceeded) << explained.status();
  EXPECT_THAT(explained.status().message(), HasSubstr("the deadline passed"));
}

}  // namespace
}  // namespace convnet
