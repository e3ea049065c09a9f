// The fast kernels against the float reference. They agree to float rounding
// (the fast path fuses multiply-adds where the processor can), and the pool
// picks the reference's position in every window but where the reference's
// own a1 values of the two positions are within a rounding of each other.
#include "core/kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/image_batch.h"
#include "core/kernel_table.h"
#include "core/parameters.h"
#include "core/random.h"
#include "core/reference.h"
#include "core/sigmoid.h"
#include "gtest/gtest.h"
#include "tests/core/test_data.h"

namespace convnet {
namespace {

struct KernelCase {
  int k;
  Cost cost;
  bool baseline = false;  // the baseline kernels instead of this processor's
};

// Runs the kernels of one instruction set for the lifetime of the guard.
class ScopedKernels {
 public:
  explicit ScopedKernels(bool baseline) {
    if (baseline) SetKernelsForTesting(&baseline::kKernelTable);
  }
  ~ScopedKernels() { SetKernelsForTesting(nullptr); }
  ScopedKernels(const ScopedKernels&) = delete;
  ScopedKernels& operator=(const ScopedKernels&) = delete;
};

class KernelsVsReferenceTest : public ::testing::TestWithParam<KernelCase> {};

void ExpectClose(float fast, float reference, float tolerance, const std::string& what) {
  EXPECT_NEAR(fast, reference, tolerance * (1.0f + std::fabs(reference))) << what;
}

// Position (in a1 [K][24][24]) of window position p of pool cell `cell`.
int PositionOf(int cell, int p) {
  const int f = cell / kPoolSize, pj = (cell % kPoolSize) / kPoolSide, pk = cell % kPoolSide;
  return (f * kConvSide + 2 * pj + p / 2) * kConvSide + 2 * pk + p % 2;
}

// Every window routes where the reference does, or to a position whose
// reference a1 is within a rounding of the window's maximum. Returns the
// number of windows that differ.
int ExpectSameArgmaxUpToRounding(const Workspace& ws, const ReferenceTrace<float>& ref) {
  int differing = 0;
  for (size_t cell = 0; cell < ref.argmax.size(); ++cell) {
    if (ws.argmax[cell] == ref.argmax[cell]) continue;
    ++differing;
    const float chosen = ref.a1[PositionOf(cell, ws.argmax[cell])];
    EXPECT_NEAR(chosen, ref.a2[cell], 2e-7f) << "window " << cell;
  }
  return differing;
}

TEST_P(KernelsVsReferenceTest, FastPathMatchesReferenceOnMnistTestImages) {
  const auto [k, cost, baseline] = GetParam();
  const ScopedKernels kernels(baseline);
  const Dataset& test = testing::BundledMnist().test;
  auto params = Parameters::Initialize(k, 1000 + k);
  ASSERT_TRUE(params.ok());
  const ImageBatch images = ImageBatch::FromPixels(test.images);
  Workspace ws(k);
  float a0[kPixels];
  for (size_t i = 0; i < 40; ++i) {
    const int label = test.labels[i];
    images.InputActivations(i, a0);
    ReferenceTrace<float> ref = ReferenceBackprop<float>(k, params->flat(), a0, label, cost);

    LoadImage(images, i, ws);
    ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), ws);
    std::vector<float> gradient(params->size(), 0.0f);
    const float estimate = BackwardExample(params->w3(), label, cost, ws, gradient.data());

    for (size_t p = 0; p < ref.z1.size(); ++p) ASSERT_NEAR(ws.z1[p], ref.z1[p], 1e-5f * (1 + std::fabs(ref.z1[p])));
    EXPECT_LE(ExpectSameArgmaxUpToRounding(ws, ref), 1) << "image " << i;
    for (size_t c = 0; c < ref.a2.size(); ++c) ASSERT_NEAR(ws.a2[c], ref.a2[c], 1e-6f) << "image " << i;
    for (int l = 0; l < kClasses; ++l) {
      ExpectClose(ws.z3[l], ref.z3[l], 1e-5f, "z3");
      ExpectClose(ws.a3[l], ref.a3[l], 1e-5f, "a3");
      ExpectClose(ws.delta3[l], ref.delta3[l], 1e-5f, "delta3");
    }
    ExpectClose(estimate, ref.cost, 1e-4f, "cost estimate");
    std::vector<float> delta1(k * kConvSize);
    Delta1(ws, delta1.data());
    for (size_t p = 0; p < delta1.size(); ++p) ExpectClose(delta1[p], ref.delta1[p], 1e-5f, "delta1");
    float scale = 0;
    for (float g : ref.gradient) scale = std::max(scale, std::fabs(g));
    for (size_t p = 0; p < gradient.size(); ++p) {
      ASSERT_NEAR(gradient[p], ref.gradient[p], 1e-5f * (scale + 1e-3f)) << "parameter " << p;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(MapsAndCosts, KernelsVsReferenceTest,
                         ::testing::Values(KernelCase{1, Cost::kCrossEntropy}, KernelCase{1, Cost::kQuadratic},
                                           KernelCase{3, Cost::kCrossEntropy}, KernelCase{20, Cost::kQuadratic},
                                           KernelCase{64, Cost::kCrossEntropy},
                                           KernelCase{1, Cost::kCrossEntropy, true},
                                           KernelCase{20, Cost::kQuadratic, true}),
                         [](const auto& info) {
                           return absl::StrCat("K", info.param.k,
                                               info.param.cost == Cost::kQuadratic ? "Quadratic" : "CrossEntropy",
                                               info.param.baseline ? "Baseline" : "");
                         });

// The vector sigma (a2 = sigma(z1_max)) and the scalar one the reference and
// the tie rule use agree bit for bit, for both instruction sets: on a fine
// grid over the range where sigma is not 0 or 1, at the clamps, and on
// 200,000 float bit patterns of every exponent; 240,008 values in all, so
// that activate takes both its six-vector steps and its one-vector tail.
TEST(KernelsTest, VectorSigmoidIsBitIdenticalToTheScalarSigmoid) {
  std::vector<float> z;
  for (float v = -100.0f; v <= 100.0f; v += 0.00731f) z.push_back(v);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, 87.3f, -87.3f, 88.3f, -88.3f, 1e-30f, -1e-30f, 1e30f, -1e30f, inf, -inf}) {
    z.push_back(v);
  }
  uint32_t state = 12345;
  while (z.size() % 8 != 0 || z.size() < 240008) {
    state = state * 1664525u + 1013904223u;
    const float v = std::bit_cast<float>(state);
    if (!std::isnan(v)) z.push_back(v);
  }
  for (bool baseline : {false, true}) {
    ScopedKernels kernels(baseline);
    std::vector<float> a(z.size());
    Kernels().activate(static_cast<int>(z.size()), z.data(), a.data());
    int differing = 0;
    for (size_t i = 0; i < z.size(); ++i) {
      if (std::bit_cast<uint32_t>(a[i]) == std::bit_cast<uint32_t>(Sigmoid(z[i]))) continue;
      if (++differing <= 5) {
        ADD_FAILURE() << (baseline ? "baseline" : KernelsName()) << ": sigma(" << z[i] << ") = " << a[i]
                      << " in a vector, " << Sigmoid(z[i]) << " alone";
      }
    }
    EXPECT_EQ(differing, 0);
  }
}

TEST(KernelsTest, PixelsLoadAsPixelOver255ForEveryByteValue) {
  std::vector<uint8_t> image(kPixels, 0);
  for (int p = 0; p < 256; ++p) image[p * 3] = static_cast<uint8_t>(p);
  Workspace ws(1);
  LoadImage(ImageBatch::FromPixels(image), 0, ws);
  for (int i = 0; i < kPixels; ++i) {
    const float expected = static_cast<float>(image[i]) / 255.0f;
    ASSERT_EQ(ws.a0[(i / kInputSide) * kPaddedInputStride + i % kInputSide], expected) << "pixel " << i;
  }
  for (int r = 0; r < kInputSide; ++r) {
    uint32_t columns = 0;
    for (int c = 0; c < kInputSide; ++c) columns |= static_cast<uint32_t>(image[r * kInputSide + c] != 0) << c;
    EXPECT_EQ(ws.nonzero_columns[r], columns) << r;
  }
}

TEST(KernelsTest, FloatImagesGiveTheSameOutputsAsTheirPixels) {
  const Dataset& test = testing::BundledMnist().test;
  auto params = Parameters::Initialize(2, 5);
  ASSERT_TRUE(params.ok());
  const std::vector<float> floats = testing::PixelsAsFloats(test.image(0));
  float a0_pixels[kPixels], a0_floats[kPixels];
  ImageBatch::FromPixels(test.image(0)).InputActivations(0, a0_pixels);
  ImageBatch::FromFloats(floats).InputActivations(0, a0_floats);
  for (int p = 0; p < kPixels; ++p) ASSERT_EQ(a0_pixels[p], a0_floats[p]);
  Workspace from_pixels(2), from_floats(2);
  LoadImage(ImageBatch::FromPixels(test.image(0)), 0, from_pixels);
  LoadImage(ImageBatch::FromFloats(floats), 0, from_floats);
  for (Workspace* ws : {&from_pixels, &from_floats}) {
    ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), *ws);
  }
  EXPECT_EQ(from_pixels.nonzero_columns, from_floats.nonzero_columns);
  EXPECT_EQ(from_pixels.z1, from_floats.z1);
  EXPECT_EQ(from_pixels.z3, from_floats.z3);
}

// Predict's path (ForwardImagesToZ3: for pixels, the forward kernels of
// several images in one call, stage by stage) gives each image the z3 that
// LoadImage and ForwardExample give it, bit for bit, and the same window
// maxima and a2; it leaves a0, the column masks and z1 as the last
// image's. Pixels and floats, both instruction sets, K = 1 (all images in one
// call) and K = 4 (four per call), runs of 1, 2, 13 and 16 images.
TEST(KernelsTest, ForwardImagesToZ3IsLoadImageThenForwardExample) {
  const Dataset batch = testing::BundledMnist().test.Prefix(40);
  const std::vector<float> floats = testing::PixelsAsFloats(batch.images);
  for (bool baseline : {false, true}) {
    const ScopedKernels kernels(baseline);
    for (int k : {1, 4}) {
      auto params = Parameters::Initialize(k, 7);
      ASSERT_TRUE(params.ok());
      const size_t n = static_cast<size_t>(k) * kPoolSize;
      for (const ImageBatch& images : {ImageBatch::FromPixels(batch.images), ImageBatch::FromFloats(floats)}) {
        for (size_t count : {1u, 2u, 13u, 16u}) {
          const size_t begin = 40 - count - 3;
          Workspace many(k), by_stage(k);
          alignas(32) float z3[16 * kClasses + 6];
          std::fill(std::begin(z3), std::end(z3), -1.0f);
          ForwardImagesToZ3(images, begin, count, params->w1(), params->b1(), params->w3(), params->b3(), many, z3);
          // Pixels: the images of the last kernel call have their window
          // maxima and a2 in images_z1_max and images_a2.
          const size_t per_call = ForwardImagesPerCall(k);
          ASSERT_EQ(per_call, k == 1 ? 16u : 4u);
          const size_t last_call = (count - 1) / per_call * per_call;
          for (size_t j = 0; j < count; ++j) {
            LoadImage(images, begin + j, by_stage);
            ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), by_stage);
            const std::string what = absl::StrCat(baseline ? "baseline" : KernelsName(), ", K ", k, ", ", count,
                                                  " images, image ", j, images.is_float() ? " (floats)" : " (pixels)");
            for (int l = 0; l < kClasses; ++l) {
              ASSERT_EQ(z3[j * kClasses + l], by_stage.z3[l]) << what << ", z3[" << l << "]";
            }
            if (!images.is_float() && j >= last_call) {
              const float* z1_max = many.images_z1_max.data() + (j - last_call) * n;
              const float* a2 = many.images_a2.data() + (j - last_call) * n;
              ASSERT_TRUE(std::equal(z1_max, z1_max + n, by_stage.z1_max.begin())) << what;
              ASSERT_TRUE(std::equal(a2, a2 + n, by_stage.a2.begin())) << what;
            }
          }
          const std::string what = absl::StrCat(baseline ? "baseline" : KernelsName(), ", K ", k, ", ", count,
                                                images.is_float() ? " images (floats)" : " images (pixels)");
          for (size_t l = count * kClasses; l < count * kClasses + 6; ++l) ASSERT_EQ(z3[l], 0.0f) << what << ", slack " << l;
          ASSERT_EQ(many.a0, by_stage.a0) << what;
          ASSERT_EQ(many.nonzero_columns, by_stage.nonzero_columns) << what;
          ASSERT_EQ(many.z1, by_stage.z1) << what;
          if (images.is_float()) {
            ASSERT_EQ(many.z1_max, by_stage.z1_max) << what;
            ASSERT_EQ(many.a2, by_stage.a2) << what;
          }
        }
      }
    }
  }
}

// Large weights push sigma into saturation, where different z1 round to the
// same a1: the pool must follow the a1 tie rule, as the reference does.
class SaturationTest : public ::testing::TestWithParam<bool> {};

TEST_P(SaturationTest, SaturatedActivationsFollowTheReferenceTieRule) {
  const ScopedKernels kernels(GetParam());
  auto params = Parameters::Initialize(4, 3);
  ASSERT_TRUE(params.ok());
  for (int i = 0; i < 4 * kKernelSize; ++i) params->w1()[i] *= 40.0f;
  for (int f = 0; f < 4; ++f) params->b1()[f] = 12.0f + 3.0f * f;
  const Dataset& test = testing::BundledMnist().test;
  Workspace ws(4);
  float a0[kPixels];
  int moved_ties = 0;
  for (size_t i = 0; i < 30; ++i) {
    ImageBatch::FromPixels(test.images).InputActivations(i, a0);
    ReferenceTrace<float> ref = ReferenceBackprop<float>(4, params->flat(), a0, test.labels[i], Cost::kQuadratic);
    LoadInput(a0, ws);
    ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), ws);
    PoolArgmax(ws);
    ExpectSameArgmaxUpToRounding(ws, ref);
    // z1 reaches the hundreds here, so its rounding moves a2 by up to ~1e-5.
    for (size_t c = 0; c < ref.a2.size(); ++c) ASSERT_NEAR(ws.a2[c], ref.a2[c], 2e-5f) << "image " << i;
    // Count windows where the a1 rule picked a position before the z1 maximum.
    for (int cell = 0; cell < 4 * kPoolSize; ++cell) {
      const int f = cell / kPoolSize, pj = (cell % kPoolSize) / kPoolSide, pk = cell % kPoolSide;
      const float* w = ws.z1.data() + (f * kConvSide + 2 * pj) * kConvSide + 2 * pk;
      const float z[4] = {w[0], w[1], w[kConvSide], w[kConvSide + 1]};
      if (z[ws.argmax[cell]] < ws.z1_max[cell]) {
        ++moved_ties;
        EXPECT_EQ(ws.argmax[cell], ref.argmax[cell]);  // saturated: both see a1 == 1 exactly
      }
    }
  }
  EXPECT_GT(moved_ties, 0) << "the test should exercise saturated ties";
}

INSTANTIATE_TEST_SUITE_P(Kernels, SaturationTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Baseline" : "Processor"; });

// An image whose non-zero columns span at most 12 has its convolution
// computed 16 columns wide (the rest of z1 is b1): every z1 must be the one
// the full-width computation gives. Each narrow MNIST digit is slid across
// every column (the 16 columns clamped at both edges), and also moved up to
// row 0 and down to row 27 (the first and last rows of the rings), then made
// wide by one pixel at the far side; z1 outside that pixel's 5x5 reach must
// not change, bit for bit. Both instruction sets, two maps.
TEST(KernelsTest, NarrowImagesGiveTheZ1OfTheFullWidth) {
  const Dataset& test = testing::BundledMnist().test;
  auto params = Parameters::Initialize(2, 11);
  ASSERT_TRUE(params.ok());
  for (bool baseline : {false, true}) {
    const ScopedKernels kernels(baseline);
    int digits = 0, positions = 0;
    for (size_t i = 0; i < test.size() && digits < 6; ++i) {
      const absl::Span<const uint8_t> image = test.image(i);
      int c0 = kInputSide, c1 = -1, r0 = kInputSide, r1 = -1;
      for (int p = 0; p < kPixels; ++p) {
        if (image[p] == 0) continue;
        c0 = std::min(c0, p % kInputSide);
        c1 = std::max(c1, p % kInputSide);
        r0 = std::min(r0, p / kInputSide);
        r1 = std::max(r1, p / kInputSide);
      }
      const int width = c1 - c0 + 1;
      if (c1 < 0 || width > 12) continue;
      ++digits;
      // (first column, rows moved down by): every column in place, then the
      // digit against the top and against the bottom edge.
      std::vector<std::pair<int, int>> placements;
      for (int left = 0; left + width <= kInputSide; ++left) placements.emplace_back(left, 0);
      placements.emplace_back(0, -r0);
      placements.emplace_back(kInputSide - width, kInputSide - 1 - r1);
      for (const auto& [left, down] : placements) {
        std::vector<uint8_t> narrow(kPixels, 0);
        for (int r = r0; r <= r1; ++r) {
          for (int c = c0; c <= c1; ++c) narrow[(r + down) * kInputSide + left + c - c0] = image[r * kInputSide + c];
        }
        // One pixel at the far side (row 13) widens the image past 12 columns.
        const int far_column = left >= kInputSide / 2 ? 0 : kInputSide - 1, far_row = 13;
        std::vector<uint8_t> wide = narrow;
        wide[far_row * kInputSide + far_column] = 200;
        Workspace narrow_ws(2), wide_ws(2);
        LoadImage(ImageBatch::FromPixels(narrow), 0, narrow_ws);
        LoadImage(ImageBatch::FromPixels(wide), 0, wide_ws);
        for (Workspace* ws : {&narrow_ws, &wide_ws}) {
          ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), *ws);
        }
        int changed = 0;
        for (int f = 0; f < 2; ++f) {
          for (int j = 0; j < kConvSide; ++j) {
            for (int k = 0; k < kConvSide; ++k) {
              const size_t at = (f * kConvSide + j) * kConvSide + k;
              const bool reached = j <= far_row && j + kKernelSide > far_row && k <= far_column &&
                                   k + kKernelSide > far_column;
              if (reached) {
                changed += narrow_ws.z1[at] != wide_ws.z1[at];
                continue;
              }
              ASSERT_EQ(narrow_ws.z1[at], wide_ws.z1[at])
                  << (baseline ? "baseline" : KernelsName()) << ", test image " << i << " from column " << left
                  << ", moved down " << down << ", map " << f << ", z1[" << j << "][" << k << "]";
            }
          }
        }
        EXPECT_GT(changed, 0) << "the far pixel should change the z1 it reaches";
        ++positions;
      }
    }
    EXPECT_EQ(digits, 6);
    EXPECT_GT(positions, 6 * 16);
  }
}

// The workspace's float arrays start on 64-byte cache lines (aligned_vector.h),
// for every K, and so do the a2 buffers GradientSum swaps with them.
TEST(KernelsTest, WorkspaceArraysStartOnCacheLines) {
  auto on_line = [](const float* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; };
  for (int k : {1, 2, 3, 20, 64}) {
    Workspace ws(k);
    for (const AlignedVector<float>* v : {&ws.a0, &ws.z1, &ws.z1_max, &ws.a2, &ws.da2, &ws.delta1}) {
      EXPECT_TRUE(on_line(v->data())) << "K = " << k;
    }
    ws.images_z1_max.resize(100);
    ws.images_a2.resize(100);
    EXPECT_TRUE(on_line(ws.images_z1_max.data()) && on_line(ws.images_a2.data())) << "K = " << k;
  }
}

TEST(KernelsTest, PredictedClassIsTheFirstLargestOutput) {
  const float a3[kClasses] = {0.1f, 0.7f, 0.2f, 0.7f, 0, 0, 0, 0, 0, 0.69f};
  EXPECT_EQ(PredictedClass(a3), 1);
}

}  // namespace
}  // namespace convnet
