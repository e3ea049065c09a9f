// The max-pool tie rule of NETWORK.md: a window of equal a1 sends delta1 to its
// first position (row-major) only, and only argmax positions carry delta1.
#include <cmath>
#include <vector>

#include "core/image_batch.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/reference.h"
#include "gtest/gtest.h"
#include "tests/core/test_data.h"

namespace convnet {
namespace {

// Position (row * 24 + column) of the first entry of pool cell (pj, pk).
int FirstOfWindow(int pj, int pk) { return 2 * pj * kConvSide + 2 * pk; }

TEST(TieRuleTest, BlankImageSendsEachWindowsDeltaToItsFirstPosition) {
  // A blank image makes z1 = b1 everywhere: every window is an exact tie.
  auto params = Parameters::Initialize(2, 11);
  ASSERT_TRUE(params.ok());
  const std::vector<uint8_t> blank(kPixels, 0);
  const uint8_t label = 4;
  auto explained = ExplainGradient(*params, ImageBatch::FromPixels(blank), absl::MakeConstSpan(&label, 1),
                                   Cost::kCrossEntropy, nullptr);
  ASSERT_TRUE(explained.ok()) << explained.status();
  const Explanation& e = explained->second[0];
  for (int f = 0; f < 2; ++f) {
    for (int pj = 0; pj < kPoolSide; ++pj) {
      for (int pk = 0; pk < kPoolSide; ++pk) {
        const int first = f * kConvSize + FirstOfWindow(pj, pk);
        const int others[3] = {first + 1, first + kConvSide, first + kConvSide + 1};
        EXPECT_EQ(e.argmax_mask[first], 1);
        EXPECT_NE(e.delta1[first], 0.0f);
        for (int o : others) {
          EXPECT_EQ(e.argmax_mask[o], 0);
          EXPECT_EQ(e.delta1[o], 0.0f);
        }
      }
    }
  }
  // dC/db1 of map 0 sums the 144 first-position deltas, one per window (BP3).
  double first_positions = 0;
  for (int cell = 0; cell < kPoolSize; ++cell) {
    first_positions += e.delta1[FirstOfWindow(cell / kPoolSide, cell % kPoolSide)];
  }
  EXPECT_NEAR(explained->first.gradient[Parameters::B1Offset(2)], first_positions,
              1e-5 * (1 + std::fabs(first_positions)));
}

TEST(TieRuleTest, OnlyArgmaxPositionsCarryDelta1OnMnist) {
  const Dataset& test = testing::BundledMnist().test;
  auto params = Parameters::Initialize(3, 12);
  ASSERT_TRUE(params.ok());
  const size_t n = 20;
  auto explained = ExplainGradient(*params, ImageBatch::FromPixels(test.Prefix(n).images),
                                   absl::MakeConstSpan(test.labels.data(), n), Cost::kQuadratic, nullptr);
  ASSERT_TRUE(explained.ok()) << explained.status();
  int tied_windows = 0;
  for (const Explanation& e : explained->second) {
    int marked = 0;
    for (size_t p = 0; p < e.delta1.size(); ++p) {
      if (e.argmax_mask[p] == 0) {
        ASSERT_EQ(e.delta1[p], 0.0f) << "position " << p;
      }
      marked += e.argmax_mask[p];
    }
    EXPECT_EQ(marked, 3 * kPoolSize);  // exactly one position per window
    // MNIST's blank border makes most windows exact ties; each went to its first position.
    for (int cell = 0; cell < kPoolSize; ++cell) {
      const int first = FirstOfWindow(cell / kPoolSide, cell % kPoolSide);
      if (e.argmax_mask[first] == 1) ++tied_windows;
    }
  }
  EXPECT_GT(tied_windows, static_cast<int>(n) * kPoolSize / 2);
}

TEST(TieRuleTest, ReferenceRoutesEqualActivationsToTheFirstMaximum) {
  // One map whose a1 windows hold chosen values.
  std::vector<float> a1(kConvSize, 0.25f), a2(kPoolSize);
  std::vector<uint8_t> argmax(kPoolSize);
  // Window (0,0): positions 1 and 3 tie for the maximum -> position 1.
  a1[1] = 0.75f;
  a1[kConvSide + 1] = 0.75f;
  // Window (0,1): all four equal -> position 0.
  // Window (0,2): positions 2 and 3 tie -> position 2.
  a1[kConvSide + 4] = 0.5f;
  a1[kConvSide + 5] = 0.5f;
  maxpool_forward<float>(1, a1.data(), a2.data(), argmax.data());
  EXPECT_EQ(argmax[0], 1);
  EXPECT_EQ(argmax[1], 0);
  EXPECT_EQ(argmax[2], 2);
  EXPECT_EQ(a2[0], 0.75f);

  std::vector<float> da2(kPoolSize, 1.0f), delta1(kConvSize);
  maxpool_backward<float>(1, da2.data(), argmax.data(), a1.data(), delta1.data());
  EXPECT_EQ(delta1[1], 0.75f * 0.25f);
  EXPECT_EQ(delta1[kConvSide + 1], 0.0f);
  EXPECT_EQ(delta1[2], 0.25f * 0.75f);
  EXPECT_EQ(delta1[3], 0.0f);
  EXPECT_EQ(delta1[kConvSide + 4], 0.5f * 0.5f);
  EXPECT_EQ(delta1[kConvSide + 5], 0.0f);
}

}  // namespace
}  // namespace convnet
