// The public entry points of network.h: batch gradients equal the mean of the
// reference's per-example gradients, do not depend on the thread count, and
// bad input is rejected with a message.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/gradient_sum.h"
#include "core/image_batch.h"
#include "core/kernels.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/reference.h"
#include "core/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/test_data.h"

namespace convnet {
namespace {

using ::testing::HasSubstr;

TEST(BackpropTest, BatchGradientIsTheMeanOfReferenceGradients) {
  const Dataset& test = testing::BundledMnist().test;
  const int k = 2;
  auto params = Parameters::Initialize(k, 21);
  ASSERT_TRUE(params.ok());
  const size_t m = 37;
  const Dataset batch = test.Prefix(m);
  ThreadPool pool(2);
  auto fast = ComputeGradient(*params, ImageBatch::FromPixels(batch.images), batch.labels,
                              Cost::kCrossEntropy, &pool);
  ASSERT_TRUE(fast.ok()) << fast.status();

  std::vector<double> mean(params->size(), 0.0);
  const std::vector<double> theta(params->flat().begin(), params->flat().end());
  double mean_cost = 0;
  for (size_t i = 0; i < m; ++i) {
    double a0[kPixels];
    ImageBatch::FromPixels(batch.images).InputActivations(i, a0);
    auto trace = ReferenceBackprop<double>(k, theta, a0, batch.labels[i], Cost::kCrossEntropy);
    for (size_t p = 0; p < mean.size(); ++p) mean[p] += trace.gradient[p] / m;
    mean_cost += trace.cost / m;
    EXPECT_NEAR(fast->costs[i], trace.cost, 1e-5 * (1 + trace.cost));
  }
  EXPECT_NEAR(fast->mean_cost, mean_cost, 1e-5 * (1 + mean_cost));
  double scale = 0;
  for (double g : mean) scale = std::max(scale, std::fabs(g));
  for (size_t p = 0; p < mean.size(); ++p) ASSERT_NEAR(fast->gradient[p], mean[p], 2e-5 * scale) << p;
}

TEST(BackpropTest, GradientIsBitIdenticalWithOneOrTwoThreads) {
  const Dataset batch = testing::BundledMnist().test.Prefix(100);
  auto params = Parameters::Initialize(3, 8);
  ASSERT_TRUE(params.ok());
  ThreadPool two(2);
  auto serial = ComputeGradient(*params, ImageBatch::FromPixels(batch.images), batch.labels,
                                Cost::kQuadratic, nullptr);
  auto parallel = ComputeGradient(*params, ImageBatch::FromPixels(batch.images), batch.labels,
                                  Cost::kQuadratic, &two);
  ASSERT_TRUE(serial.ok() && parallel.ok());
  EXPECT_EQ(serial->gradient, parallel->gradient);
  EXPECT_EQ(serial->costs, parallel->costs);
}

// GradientSum adds dC/dw3 once per chunk, for all its examples at once
// (AddDenseWeightGradients); its sum must be bit for bit the chunks' sums of
// BackwardExample after each example, added in chunk order. K = 1 and 3, both
// costs, shuffled indices, chunks of 1 to 16 examples, serial and on two threads.
TEST(BackpropTest, GradientSumIsBackwardExampleAfterEachExample) {
  const Dataset data = testing::BundledMnist().test.Prefix(80);
  const ImageBatch images = ImageBatch::FromPixels(data.images);
  ThreadPool two(2);
  for (int k : {1, 3}) {
    auto params = Parameters::Initialize(k, 21);
    ASSERT_TRUE(params.ok());
    for (Cost cost : {Cost::kCrossEntropy, Cost::kQuadratic}) {
      for (size_t m : {1u, 5u, 10u, 37u, 64u}) {
        std::vector<uint32_t> indices(m);
        for (size_t e = 0; e < m; ++e) indices[e] = static_cast<uint32_t>((e * 29 + 7) % data.size());
        std::vector<float> expected(params->size(), 0.0f), chunk(params->size());
        const ChunkLayout layout(m);
        ASSERT_LE(layout.size, ChunkLayout::kMaxSize);
        Workspace ws(k);
        for (size_t c = 0; c < layout.count; ++c) {
          std::fill(chunk.begin(), chunk.end(), 0.0f);
          for (size_t e = c * layout.size; e < std::min(m, (c + 1) * layout.size); ++e) {
            LoadImage(images, indices[e], ws);
            ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), ws);
            BackwardExample(params->w3(), data.labels[indices[e]], cost, ws, chunk.data());
          }
          for (size_t i = 0; i < chunk.size(); ++i) expected[i] = c == 0 ? chunk[i] : expected[i] + chunk[i];
        }
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
          GradientSum gradient_sum(k);
          std::vector<float> sum(params->size(), -1.0f);
          gradient_sum.Compute(*params, images, data.labels.data(), indices.data(), m, cost, pool, sum.data());
          for (size_t i = 0; i < sum.size(); ++i) {
            ASSERT_EQ(sum[i], expected[i]) << "K " << k << ", " << m << " examples, parameter " << i
                                           << (pool != nullptr ? ", two threads" : "");
          }
        }
      }
    }
  }
}

TEST(BackpropTest, ExplainAgreesWithComputeGradient) {
  const Dataset batch = testing::BundledMnist().test.Prefix(5);
  auto params = Parameters::Initialize(1, 4);
  ASSERT_TRUE(params.ok());
  auto gradient = ComputeGradient(*params, ImageBatch::FromPixels(batch.images), batch.labels,
                                  Cost::kCrossEntropy, nullptr);
  auto explained = ExplainGradient(*params, ImageBatch::FromPixels(batch.images), batch.labels,
                                   Cost::kCrossEntropy, nullptr);
  ASSERT_TRUE(gradient.ok() && explained.ok());
  EXPECT_EQ(explained->first.gradient, gradient->gradient);
  ASSERT_EQ(explained->second.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const Explanation& e = explained->second[i];
    EXPECT_EQ(e.delta1.size(), static_cast<size_t>(kConvSize));
    EXPECT_EQ(e.cost, gradient->costs[i]);
    for (int l = 0; l < kClasses; ++l) {
      EXPECT_FLOAT_EQ(e.delta3[l], e.a3[l] - (l == batch.labels[i] ? 1.0f : 0.0f));
    }
  }
}

TEST(BackpropTest, PredictMatchesTheReferenceForward) {
  const Dataset batch = testing::BundledMnist().test.Prefix(300);
  auto params = Parameters::Initialize(4, 2);
  ASSERT_TRUE(params.ok());
  ThreadPool pool(2);
  auto predictions = Predict(*params, ImageBatch::FromPixels(batch.images), &pool);
  ASSERT_TRUE(predictions.ok());
  ASSERT_EQ(predictions->size(), 300u);
  for (size_t i = 0; i < 300; ++i) {
    float a0[kPixels];
    ImageBatch::FromPixels(batch.images).InputActivations(i, a0);
    auto trace = ReferenceBackprop<float>(4, params->flat(), a0, 0, Cost::kQuadratic);
    for (int l = 0; l < kClasses; ++l) ASSERT_NEAR((*predictions)[i].a3[l], trace.a3[l], 1e-5);
  }
}

// Predict applies sigma to the z3 of up to 16 images at once; its a3 and
// class must be those of the forward pass that training runs, bit for bit:
// batches of 1, 16 and 300 images (a last task of 12), K = 1 and 3, serial
// and on two threads.
TEST(BackpropTest, PredictIsBitIdenticalToTheTrainingForwardPass) {
  ThreadPool pool(2);
  for (int k : {1, 3}) {
    auto params = Parameters::Initialize(k, 5);
    ASSERT_TRUE(params.ok());
    for (size_t n : {1u, 16u, 300u}) {
      const Dataset batch = testing::BundledMnist().test.Prefix(n);
      const ImageBatch images = ImageBatch::FromPixels(batch.images);
      auto explained = ExplainGradient(*params, images, batch.labels, Cost::kCrossEntropy, nullptr);
      ASSERT_TRUE(explained.ok());
      // The same images as floats p / 255 take Predict's other path.
      const std::vector<float> floats = testing::PixelsAsFloats(batch.images);
      const ImageBatch float_images = ImageBatch::FromFloats(floats);
      for (auto [threads, input] : {std::pair{static_cast<ThreadPool*>(nullptr), &images}, std::pair{&pool, &images},
                                    std::pair{static_cast<ThreadPool*>(nullptr), &float_images}}) {
        auto predictions = Predict(*params, *input, threads);
        ASSERT_TRUE(predictions.ok());
        ASSERT_EQ(predictions->size(), n);
        for (size_t i = 0; i < n; ++i) {
          const Explanation& e = explained->second[i];
          for (int l = 0; l < kClasses; ++l) {
            ASSERT_EQ((*predictions)[i].a3[l], e.a3[l]) << "K " << k << ", image " << i << " of " << n << ", a3["
                                                         << l << "]" << (input->is_float() ? ", floats" : "");
          }
          int best = 0;
          for (int l = 1; l < kClasses; ++l) best = e.a3[l] > e.a3[best] ? l : best;
          ASSERT_EQ((*predictions)[i].predicted_class, best) << "K " << k << ", image " << i << " of " << n;
        }
      }
    }
  }
}

TEST(BackpropTest, RejectsMismatchedLabelsOutOfRangeLabelsAndBadImages) {
  auto params = Parameters::Initialize(1, 1);
  ASSERT_TRUE(params.ok());
  const std::vector<uint8_t> two_images(2 * kPixels, 0);
  const std::vector<uint8_t> one_label = {1};
  auto mismatch = ComputeGradient(*params, ImageBatch::FromPixels(two_images), one_label, Cost::kQuadratic, nullptr);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("got 1 labels for 2 images"));

  const std::vector<uint8_t> bad_label = {3, 10};
  auto out_of_range = ComputeGradient(*params, ImageBatch::FromPixels(two_images), bad_label, Cost::kQuadratic, nullptr);
  EXPECT_EQ(out_of_range.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("label 1 must be in 0..9, got 10"));

  auto empty = ComputeGradient(*params, ImageBatch::FromPixels({}), {}, Cost::kQuadratic, nullptr);
  EXPECT_THAT(empty.status().message(), HasSubstr("no examples"));

  const std::vector<uint8_t> ragged(kPixels + 3, 0);
  auto partial = Predict(*params, ImageBatch::FromPixels(ragged), nullptr);
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(partial.status().message(), HasSubstr("not a multiple of 784"));

  std::vector<float> floats(kPixels, 0.5f);
  floats[100] = 1.5f;
  auto out_of_unit = Predict(*params, ImageBatch::FromFloats(floats), nullptr);
  EXPECT_THAT(out_of_unit.status().message(), HasSubstr("image 0 pixel 100"));
  floats[100] = NAN;
  EXPECT_FALSE(Predict(*params, ImageBatch::FromFloats(floats), nullptr).ok());
}

}  // namespace
}  // namespace convnet
