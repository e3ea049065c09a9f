// The two cost functions of NETWORK.md.
#ifndef CONVNET_CORE_COST_H_
#define CONVNET_CORE_COST_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet {

enum class Cost {
  kQuadratic = 0,     // C = 1/2 sum_l (a3 - y)^2
  kCrossEntropy = 1,  // C = -sum_l [y ln a3 + (1 - y) ln(1 - a3)]
};

// "quadratic" or "cross_entropy".
const char* CostName(Cost cost);

// Parses CostName's output (also accepts "cross-entropy"); INVALID_ARGUMENT
// naming the text otherwise.
absl::StatusOr<Cost> ParseCost(absl::string_view name);

}  // namespace convnet

#endif  // CONVNET_CORE_COST_H_
