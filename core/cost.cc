#include "core/cost.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace convnet {

const char* CostName(Cost cost) {
  switch (cost) {
    case Cost::kQuadratic:
      return "quadratic";
    case Cost::kCrossEntropy:
      return "cross_entropy";
  }
  return "unknown";
}

absl::StatusOr<Cost> ParseCost(absl::string_view name) {
  if (name == "quadratic") return Cost::kQuadratic;
  if (name == "cross_entropy" || name == "cross-entropy") return Cost::kCrossEntropy;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown cost \"", absl::CEscape(name), "\"; expected \"quadratic\" or \"cross_entropy\""));
}

}  // namespace convnet
