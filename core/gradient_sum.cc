#include "core/gradient_sum.h"

#include <algorithm>
#include <cstring>

#include "core/network.h"

namespace convnet {

ChunkLayout::ChunkLayout(size_t m) {
  size_t chunks = (m + kMaxSize - 1) / kMaxSize;  // so that size <= kMaxSize
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
    chunk_a2_.emplace_back();
    chunk_delta3_.emplace_back();
  }
  for (size_t c = 0; c < layout.count; ++c) {
    // Buffers the size of a workspace's a2, which they trade places with.
    while (chunk_a2_[c].size() < layout.size) chunk_a2_[c].emplace_back(workspaces_[c]->a2.size());
    if (chunk_delta3_[c].size() < layout.size * 16) chunk_delta3_[c].resize(layout.size * 16);
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
    const size_t begin = c * layout.size;
    const size_t end = std::min(m, begin + layout.size);
    std::vector<AlignedVector<float>>& a2 = chunk_a2_[c];
    float* delta3 = chunk_delta3_[c].data();
    const float* a2_of[ChunkLayout::kMaxSize];
    for (size_t e = begin; e < end; ++e) {
      const uint32_t index = indices[e];
      if (e + 1 < end) PrefetchImage(images, indices[e + 1]);
      LoadImage(images, index, ws);
      ForwardExample(w1, b1, w3, b3, ws);
      cost_sum += BackwardExampleButDenseWeights(w3, labels[index], cost, ws, chunk_sum);
      ws.a2.swap(a2[e - begin]);
      a2_of[e - begin] = a2[e - begin].data();
      std::copy_n(ws.delta3.begin(), 16, delta3 + (e - begin) * 16);
      if (exact_costs != nullptr) exact_costs[e] = ExampleCost(cost, ws.z3.data(), labels[index]);
      if (predicted != nullptr) predicted[e] = static_cast<uint8_t>(PredictedClass(ws.a3.data()));
    }
    AddDenseWeightGradients(k_, end - begin, a2_of, delta3, chunk_sum);
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
