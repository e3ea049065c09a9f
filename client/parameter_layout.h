// The flat parameter (and gradient) vector of NETWORK.md, seen block by
// block: w1 [K][5][5], b1 [K], w3 [10][K][12][12], b3 [10].
#ifndef CONVNET_CLIENT_PARAMETER_LAYOUT_H_
#define CONVNET_CLIENT_PARAMETER_LAYOUT_H_

#include <string>
#include <vector>

#include "absl/types/span.h"

namespace convnet::client {

struct BlockSummary {
  std::string name;      // "w1", "b1", "w3", "b3"
  size_t size = 0;       // number of entries
  double l2_norm = 0;    // sqrt of the sum of squares
  double max_abs = 0;    // largest |entry|
  std::string max_abs_at;  // e.g. "w3[7][0][3][4]"
};

// The name of entry `index` of the flat vector for K maps, e.g. "b1[0]" or
// "w3[7][0][3][4]"; "out of range" past the end.
std::string ParameterName(int feature_maps, size_t index);

// One summary per block, in layout order. `values` must hold
// ParameterCount(feature_maps) entries (shorter input yields partial blocks).
std::vector<BlockSummary> SummarizeBlocks(int feature_maps, absl::Span<const float> values);

// The summary of the whole vector (name "all").
BlockSummary SummarizeAll(int feature_maps, absl::Span<const float> values);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_PARAMETER_LAYOUT_H_
