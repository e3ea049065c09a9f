#include "core/gradient_sum.h"

#include <algorithm>
#include <cstring>

#include "core/network.h"

namespace convnet {

ChunkLayout::ChunkLayout(size_t m) {
  constexpr size_t kTargetChunk = 16;
  size_t chunks = (m + kTargetChunk - 1) / kTargetChunk;
  chunks += chunks % 2;
  chunks = std::max<size_t>(1, std::min(chunks, m));
  size = (m + chunks - 1) / chunks;
  count = size == 0 ? 1 : (m + size - 1) / size;
}

GradientSum::GradientSum(int k) : k_(k) {}

double GradientSum::Compute(const Parameters& params, const ImageBatch& images, const uint8_t* labels,
                            const uint32_t* indices, size_t m, Cost cost, ThreadPool* pool, float* sum,
                            double* exact_costs, uint8_t* predicted, StopCheck* stop) {
  const size_t p = ParameterCount(k_);
  const ChunkLayout layout(m);
  while (workspaces_.size() < layout.count) {
    workspaces_.push_back(std::make_unique<Workspace>(k_));
    chunk_sums_.emplace_back(p);
    chunk_costs_.push_back(0.0);
  }
  const float* w1 = params.w1();
  const float* b1 = params.b1();
  const float* w3 = params.w3();
  const float* b3 = params.b3();

  auto run_chunk = [&](size_t c) {
    if (stop != nullptr && stop->ShouldStop()) return;
    Workspace& ws = *workspaces_[c];
    float* chunk_sum = c == 0 ? sum : chunk_sums_[c].data();
    std::memset(chunk_sum, 0, p * sizeof(float));
    double cost_sum = 0.0;
    const size_t end = std::min(m, (c + 1) * layout.size);
    for (size_t e = c * layout.size; e < end; ++e) {
      const uint32_t index = indices[e];
      if (e + 1 < end) PrefetchImage(images, indices[e + 1]);
      LoadImage(images, index, ws);
      ForwardExample(w1, b1, w3, b3, ws);
      cost_sum += BackwardExample(w3, labels[index], cost, ws, chunk_sum);
      if (exact_costs != nullptr) exact_costs[e] = ExampleCost(cost, ws.z3.data(), labels[index]);
      if (predicted != nullptr) predicted[e] = static_cast<uint8_t>(PredictedClass(ws.a3.data()));
    }
    chunk_costs_[c] = cost_sum;
    if (stop != nullptr) stop->Done(end - c * layout.size);
  };
  // Handing a chunk to another thread costs tens of microseconds on these
  // machines, more than a small mini-batch takes: those run on the caller.
  // The chunks, and so the result, are the same either way.
  constexpr size_t kParallelMinExamples = 32;
  if (pool != nullptr && layout.count > 1 && m >= kParallelMinExamples) {
    pool->ParallelFor(layout.count, run_chunk);
  } else {
    for (size_t c = 0; c < layout.count; ++c) run_chunk(c);
  }
  if (stop != nullptr && stop->stopped()) return 0.0;  // some chunks never ran
  // Chunk sums in chunk order.
  double cost_sum = chunk_costs_[0];
  for (size_t c = 1; c < layout.count; ++c) {
    const float* chunk_sum = chunk_sums_[c].data();
    for (size_t i = 0; i < p; ++i) sum[i] += chunk_sum[i];
    cost_sum += chunk_costs_[c];
  }
  return cost_sum;
}

}  // namespace convnet
