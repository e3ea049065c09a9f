// The summed gradient of a set of examples, computed data-parallel with a
// result that does not depend on the number of threads: the examples are cut
// into chunks that depend only on their count (ChunkLayout), each chunk is
// summed in example order into its own buffer, and the chunk sums are added in
// chunk order. Within a chunk, dC/dw3 is added after its last example, for
// all of them at once, each element still summed in example order. Used by
// the trainer (one per run, reused for every mini-batch) and by
// ComputeGradient.
#ifndef CONVNET_CORE_GRADIENT_SUM_H_
#define CONVNET_CORE_GRADIENT_SUM_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/aligned_vector.h"
#include "core/cost.h"
#include "core/image_batch.h"
#include "core/kernels.h"
#include "core/parameters.h"
#include "core/stop_token.h"
#include "core/thread_pool.h"

namespace convnet {

// Chunks for m examples: up to kMaxSize (16) examples each, an even number of
// chunks (so that two threads share small mini-batches evenly), never empty.
struct ChunkLayout {
  static constexpr size_t kMaxSize = 16;  // examples per chunk at most

  explicit ChunkLayout(size_t m);
  size_t count;  // number of chunks
  size_t size;   // examples per chunk (the last may have fewer)
};

class GradientSum {
 public:
  explicit GradientSum(int k);

  // Adds nothing to `sum`: overwrites sum[0 .. ParameterCount(k)) with
  // sum over e in [0, m) of dC/dparams for image indices[e] with label
  // labels[indices[e]]. Returns the sum of the kernels' fast cost estimates.
  // When `exact_costs` / `predicted` are non-null they receive, per e, the
  // exact C_x (ExampleCost) and argmax a3.
  //
  // When `stop` is non-null it is asked before each chunk; once it has fired
  // the chunks not yet started are skipped, and `sum`, the costs and the
  // return value are unspecified (the caller reports stop->status()).
  double Compute(const Parameters& params, const ImageBatch& images, const uint8_t* labels,
                 const uint32_t* indices, size_t m, Cost cost, ThreadPool* pool, float* sum,
                 double* exact_costs = nullptr, uint8_t* predicted = nullptr, StopCheck* stop = nullptr);

 private:
  const int k_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;  // one per chunk
  std::vector<std::vector<float>> chunk_sums_;          // one per chunk
  // Per chunk, its examples' a2 (each swapped out of the workspace, no copy)
  // and delta3 [examples][16]: dC/dw3 is added for the whole chunk at once
  // (AddDenseWeightGradients).
  std::vector<std::vector<AlignedVector<float>>> chunk_a2_;
  std::vector<std::vector<float>> chunk_delta3_;
  std::vector<double> chunk_costs_;
};

}  // namespace convnet

#endif  // CONVNET_CORE_GRADIENT_SUM_H_
