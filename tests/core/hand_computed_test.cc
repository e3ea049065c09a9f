// One bright pixel and chosen weights: every value computed by hand here, with
// the formulas of NETWORK.md written out, and compared with the network's.
#include <cmath>
#include <vector>

#include "core/image_batch.h"
#include "core/network.h"
#include "core/parameters.h"
#include "gtest/gtest.h"

namespace convnet {
namespace {

double sigma(double z) { return 1.0 / (1.0 + std::exp(-z)); }

TEST(HandComputedTest, OneBrightPixelThroughEveryLayer) {
  // Input: pixel (11, 11) = 255, so a0[11][11] = 1, every other a0 = 0.
  std::vector<uint8_t> image(kPixels, 0);
  image[11 * kInputSide + 11] = 255;
  // w1: only the centre tap w1[2][2] = 2; b1 = -1.
  // z1[j][k] = -1 + 2 a0[j+2][k+2]  ->  z1[9][9] = 1, every other z1 = -1.
  // Window (4,4) = rows 8..9, columns 8..9: its maximum is (9,9), position 3.
  // Every other window is a tie of sigma(-1): position 0.
  // w3: only w3[3; 4,4] = 1.5; b3[3] = -0.5, other b3 = 0.
  auto params = Parameters::Zeros(1);
  ASSERT_TRUE(params.ok());
  params->w1()[2 * 5 + 2] = 2.0f;
  params->b1()[0] = -1.0f;
  const int cell = 4 * kPoolSide + 4;
  params->w3()[3 * kPoolSize + cell] = 1.5f;
  params->b3()[3] = -0.5f;
  const uint8_t label = 3;

  const double a2_peak = sigma(1.0), a2_flat = sigma(-1.0);
  const double z3_3 = -0.5 + 1.5 * a2_peak;  // z3[3] = b3[3] + w3[3;4,4] a2[4,4]
  const double a3_3 = sigma(z3_3), a3_other = sigma(0.0);

  // Cross-entropy: delta3 = a3 - y (BP1).
  const double delta3_3 = a3_3 - 1.0, delta3_other = a3_other;
  // dC/da2[4,4] = delta3[3] w3[3;4,4]; delta1[9][9] = that * sigma'(z1[9][9]) (BP2).
  const double delta1_peak = delta3_3 * 1.5 * a2_peak * (1.0 - a2_peak);

  auto explained = ExplainGradient(*params, ImageBatch::FromPixels(image), absl::MakeConstSpan(&label, 1),
                                   Cost::kCrossEntropy, nullptr);
  ASSERT_TRUE(explained.ok()) << explained.status();
  const Explanation& e = explained->second[0];
  const std::vector<float>& g = explained->first.gradient;

  EXPECT_NEAR(e.z3[3], z3_3, 1e-6);
  for (int l = 0; l < kClasses; ++l) {
    if (l != 3) {
      EXPECT_EQ(e.z3[l], 0.0f);
    }
  }
  EXPECT_NEAR(e.a3[3], a3_3, 1e-6);
  EXPECT_NEAR(e.delta3[3], delta3_3, 1e-6);
  EXPECT_NEAR(e.delta3[0], delta3_other, 1e-6);
  // The pool routed window (4,4) to (9,9) and every other window to its first position.
  EXPECT_EQ(e.argmax_mask[9 * kConvSide + 9], 1);
  EXPECT_EQ(e.argmax_mask[8 * kConvSide + 8], 0);
  EXPECT_EQ(e.argmax_mask[0], 1);
  EXPECT_NEAR(e.delta1[9 * kConvSide + 9], delta1_peak, 1e-6);
  // Other windows get dC/da2 = 0 (their w3 are all zero): no delta1 anywhere else.
  for (int p = 0; p < kConvSize; ++p) {
    if (p != 9 * kConvSide + 9) {
      EXPECT_EQ(e.delta1[p], 0.0f) << p;
    }
  }
  // Cost: -ln a3[3] - sum_{l != 3} ln(1 - a3[l]).
  const double cost = -std::log(a3_3) - 9 * std::log(1 - a3_other);
  EXPECT_NEAR(explained->first.mean_cost, cost, 1e-6);

  // Gradients (BP3, BP4).
  const int k = 1;
  EXPECT_NEAR(g[Parameters::B3Offset(k) + 3], delta3_3, 1e-6);
  EXPECT_NEAR(g[Parameters::B3Offset(k) + 0], delta3_other, 1e-6);
  EXPECT_NEAR(g[Parameters::W3Offset(k) + 3 * kPoolSize + cell], a2_peak * delta3_3, 1e-6);
  EXPECT_NEAR(g[Parameters::W3Offset(k) + 0 * kPoolSize + 0], a2_flat * delta3_other, 1e-6);
  EXPECT_NEAR(g[Parameters::B1Offset(k)], delta1_peak, 1e-6);
  // dC/dw1[l][m] = delta1[9][9] a0[9+l][9+m]: only l = m = 2 sees the bright pixel.
  for (int i = 0; i < kKernelSize; ++i) {
    EXPECT_NEAR(g[i], i == 2 * 5 + 2 ? delta1_peak : 0.0, 1e-7) << "w1 " << i;
  }
}

}  // namespace
}  // namespace convnet
