#include "core/parameters.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnet {
namespace {

using ::testing::HasSubstr;

TEST(ParametersTest, CountFollowsTheLayoutOfNetworkMd) {
  EXPECT_EQ(ParameterCount(1), 25u + 1u + 1440u + 10u);
  EXPECT_EQ(ParameterCount(3), 75u + 3u + 4320u + 10u);
  auto p = Parameters::Zeros(3);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->size(), ParameterCount(3));
  EXPECT_EQ(p->b1() - p->w1(), 75);
  EXPECT_EQ(p->w3() - p->w1(), 78);
  EXPECT_EQ(p->b3() - p->w1(), 78 + 4320);
}

TEST(ParametersTest, RejectsMapCountsOutsideOneToSixtyFour) {
  for (int k : {0, -1, 65, 1000}) {
    auto p = Parameters::Initialize(k, 1);
    ASSERT_FALSE(p.ok()) << k;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr("got " + std::to_string(k)));
  }
  EXPECT_TRUE(Parameters::Initialize(64, 1).ok());
}

TEST(ParametersTest, SameSeedGivesIdenticalParametersAndOtherSeedsDiffer) {
  auto a = Parameters::Initialize(2, 42);
  auto b = Parameters::Initialize(2, 42);
  auto c = Parameters::Initialize(2, 43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(*a == *c);
}

TEST(ParametersTest, InitialisationHasTheStandardDeviationsOfNetworkMd) {
  auto p = Parameters::Initialize(20, 7);
  ASSERT_TRUE(p.ok());
  auto stddev = [](const float* v, size_t n) {
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; ++i) sum += v[i], sum2 += double(v[i]) * v[i];
    const double mean = sum / n;
    return std::sqrt(sum2 / n - mean * mean);
  };
  EXPECT_NEAR(stddev(p->w1(), 20 * 25), 1.0 / 5.0, 0.02);
  EXPECT_NEAR(stddev(p->w3(), 10 * 20 * 144), 1.0 / std::sqrt(144.0 * 20), 0.002);
}

TEST(ParametersTest, FromFlatRejectsWrongLengthAndNonFiniteValues) {
  std::vector<float> flat(ParameterCount(1), 0.5f);
  EXPECT_TRUE(Parameters::FromFlat(1, flat).ok());
  flat.pop_back();
  auto short_one = Parameters::FromFlat(1, flat);
  ASSERT_FALSE(short_one.ok());
  EXPECT_THAT(short_one.status().message(), HasSubstr("must have 1476 values"));
  EXPECT_THAT(short_one.status().message(), HasSubstr("got 1475"));
  flat.push_back(NAN);
  auto nan = Parameters::FromFlat(1, flat);
  ASSERT_FALSE(nan.ok());
  EXPECT_THAT(nan.status().message(), HasSubstr("parameter 1475 is not finite"));
}

// w3 starts on a 64-byte cache line for every K, however the parameters were
// made or copied, and flat() still holds exactly the values given.
TEST(ParametersTest, W3StartsOnACacheLineAndFlatHoldsTheValuesGiven) {
  auto on_line = [](const float* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; };
  for (int k = kMinMaps; k <= kMaxMaps; ++k) {
    auto zeros = Parameters::Zeros(k);
    auto initialized = Parameters::Initialize(k, 7);
    ASSERT_TRUE(zeros.ok() && initialized.ok()) << k;
    std::vector<float> flat(ParameterCount(k));
    for (size_t i = 0; i < flat.size(); ++i) flat[i] = static_cast<float>(i) * 0.25f;
    auto from_flat = Parameters::FromFlat(k, flat);
    ASSERT_TRUE(from_flat.ok()) << k;
    const Parameters copy = *from_flat;
    const std::initializer_list<const Parameters*> all = {&*zeros, &*initialized, &*from_flat, &copy};
    for (const Parameters* p : all) {
      EXPECT_TRUE(on_line(p->w3())) << "K = " << k;
      EXPECT_EQ(p->flat().size(), ParameterCount(k));
      EXPECT_EQ(p->w1(), p->flat().data());
    }
    EXPECT_EQ(std::vector<float>(from_flat->flat().begin(), from_flat->flat().end()), flat) << k;
    EXPECT_EQ(copy, *from_flat);
    EXPECT_FALSE(copy == *zeros);
  }
}

}  // namespace
}  // namespace convnet
