#include "client/parameter_layout.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/shape.h"

namespace convnet::client {
namespace {

struct Block {
  const char* name;
  size_t begin;
  size_t size;
};

std::vector<Block> Blocks(int k) {
  const size_t w1 = static_cast<size_t>(k) * kKernelSize;
  const size_t b1 = static_cast<size_t>(k);
  const size_t w3 = static_cast<size_t>(kClasses) * k * kPoolSize;
  const size_t b3 = kClasses;
  return {{"w1", 0, w1}, {"b1", w1, b1}, {"w3", w1 + b1, w3}, {"b3", w1 + b1 + w3, b3}};
}

BlockSummary Summarize(int k, const std::string& name, absl::Span<const float> values,
                       size_t begin, size_t size) {
  BlockSummary summary;
  summary.name = name;
  const size_t end = std::min(values.size(), begin + size);
  summary.size = end > begin ? end - begin : 0;
  double squares = 0;
  size_t max_at = begin;
  for (size_t i = begin; i < end; ++i) {
    const double value = values[i];
    squares += value * value;
    if (std::fabs(value) > summary.max_abs) {
      summary.max_abs = std::fabs(value);
      max_at = i;
    }
  }
  summary.l2_norm = std::sqrt(squares);
  summary.max_abs_at = summary.size > 0 ? ParameterName(k, max_at) : "-";
  return summary;
}

}  // namespace

std::string ParameterName(int k, size_t index) {
  for (const Block& block : Blocks(k)) {
    if (index >= block.begin + block.size) continue;
    size_t i = index - block.begin;
    const std::string name = block.name;
    if (name == "w1") {  // [K][5][5]
      return absl::StrCat("w1[", i / kKernelSize, "][", i % kKernelSize / kKernelSide, "][",
                          i % kKernelSide, "]");
    }
    if (name == "w3") {  // [10][K][12][12]
      const size_t per_class = static_cast<size_t>(k) * kPoolSize;
      return absl::StrCat("w3[", i / per_class, "][", i % per_class / kPoolSize, "][",
                          i % kPoolSize / kPoolSide, "][", i % kPoolSide, "]");
    }
    return absl::StrCat(name, "[", i, "]");
  }
  return "out of range";
}

std::vector<BlockSummary> SummarizeBlocks(int k, absl::Span<const float> values) {
  std::vector<BlockSummary> summaries;
  for (const Block& block : Blocks(k)) {
    summaries.push_back(Summarize(k, block.name, values, block.begin, block.size));
  }
  return summaries;
}

BlockSummary SummarizeAll(int k, absl::Span<const float> values) {
  return Summarize(k, "all", values, 0, values.size());
}

}  // namespace convnet::client
