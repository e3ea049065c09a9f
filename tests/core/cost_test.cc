// Cost names (core/cost.h): printing and parsing.
#include "core/cost.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnet {
namespace {

using ::testing::HasSubstr;

TEST(CostTest, NamesAreQuadraticAndCrossEntropy) {
  EXPECT_STREQ(CostName(Cost::kQuadratic), "quadratic");
  EXPECT_STREQ(CostName(Cost::kCrossEntropy), "cross_entropy");
}

TEST(CostTest, ParseCostInvertsCostName) {
  for (Cost cost : {Cost::kQuadratic, Cost::kCrossEntropy}) {
    absl::StatusOr<Cost> parsed = ParseCost(CostName(cost));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, cost);
  }
}

TEST(CostTest, ParseCostAcceptsHyphenatedCrossEntropy) {
  absl::StatusOr<Cost> parsed = ParseCost("cross-entropy");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, Cost::kCrossEntropy);
}

TEST(CostTest, ParseCostRejectsUnknownNameNamingIt) {
  absl::StatusOr<Cost> parsed = ParseCost("hinge");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("\"hinge\""));
}

TEST(CostTest, ParseCostIsCaseSensitiveAndRejectsEmpty) {
  EXPECT_EQ(ParseCost("Quadratic").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCost("").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace convnet
