// Backprop against central finite differences in double precision, on real
// MNIST test images: every entry of w1 and b1, a sample of w3 and b3, for both
// costs and K = 1 and K = 3. The float fast path is checked against the same
// double-precision gradient.
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/image_batch.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/reference.h"
#include "gtest/gtest.h"
#include "tests/core/test_data.h"

namespace convnet {
namespace {

struct FdCase {
  int k;
  Cost cost;
};

class FiniteDifferenceTest : public ::testing::TestWithParam<FdCase> {};

// The indices checked: all of w1 and b1, every 7th of w3, all of b3.
std::vector<size_t> CheckedIndices(int k) {
  std::vector<size_t> indices;
  for (size_t i = 0; i < Parameters::W3Offset(k); ++i) indices.push_back(i);
  for (size_t i = Parameters::W3Offset(k); i < Parameters::B3Offset(k); i += 7) indices.push_back(i);
  for (size_t i = Parameters::B3Offset(k); i < ParameterCount(k); ++i) indices.push_back(i);
  return indices;
}

TEST_P(FiniteDifferenceTest, BackpropMatchesCentralDifferences) {
  const auto [k, cost] = GetParam();
  const Dataset& test = testing::BundledMnist().test;
  auto params = Parameters::Initialize(k, 77 + k);
  ASSERT_TRUE(params.ok());
  const std::vector<double> theta(params->flat().begin(), params->flat().end());
  const ImageBatch images = ImageBatch::FromPixels(test.images);
  const double h = 1e-6;
  int checked = 0;
  for (size_t image : {0u, 1u, 2u}) {
    const int label = test.labels[image];
    double a0[kPixels];
    images.InputActivations(image, a0);
    const ReferenceTrace<double> trace = ReferenceBackprop<double>(k, theta, a0, label, cost);

    // The fast float path on the same example, through the public API.
    auto fast = ComputeGradient(*params, ImageBatch::FromPixels(test.image(image)),
                                absl::MakeConstSpan(&test.labels[image], 1), cost, nullptr);
    ASSERT_TRUE(fast.ok()) << fast.status();
    EXPECT_NEAR(fast->mean_cost, trace.cost, 1e-5 * (1 + trace.cost));

    double scale = 0;
    for (double g : trace.gradient) scale = std::max(scale, std::fabs(g));
    for (size_t i : CheckedIndices(k)) {
      std::vector<double> plus = theta, minus = theta;
      plus[i] += h;
      minus[i] -= h;
      const double numeric = (ReferenceCost<double>(k, plus, a0, label, cost) -
                              ReferenceCost<double>(k, minus, a0, label, cost)) / (2 * h);
      const double analytic = trace.gradient[i];
      ASSERT_NEAR(analytic, numeric, 1e-6 * (1 + std::fabs(numeric)))
          << "parameter " << i << " image " << image;
      ASSERT_NEAR(fast->gradient[i], analytic, 2e-5 * (scale + 1e-3)) << "fast, parameter " << i;
      ++checked;
    }
  }
  EXPECT_GE(checked, 3 * (26 * k + 10));
}

INSTANTIATE_TEST_SUITE_P(MapsAndCosts, FiniteDifferenceTest,
                         ::testing::Values(FdCase{1, Cost::kCrossEntropy}, FdCase{1, Cost::kQuadratic},
                                           FdCase{3, Cost::kCrossEntropy}, FdCase{3, Cost::kQuadratic}),
                         [](const auto& info) {
                           return absl::StrCat("K", info.param.k,
                                               info.param.cost == Cost::kQuadratic ? "Quadratic" : "CrossEntropy");
                         });

}  // namespace
}  // namespace convnet
