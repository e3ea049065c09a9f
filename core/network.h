// The public entry points of the network: batch inference, the gradient of the
// mean cost of a batch, and the per-example "explain" variant. Each runs the
// fast kernels (kernels.h) spread over a ThreadPool; results do not depend on
// the number of threads.
//
// Each takes an optional StopToken (stop_token.h), checked once per task of
// about 16 examples: when it fires the call returns DEADLINE_EXCEEDED (or
// CANCELLED, for the token's flag) without computing the remaining tasks,
// and the message says how many examples were done. A token that does not
// fire leaves the results bit for bit unchanged.
#ifndef CONVNET_CORE_NETWORK_H_
#define CONVNET_CORE_NETWORK_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/cost.h"
#include "core/image_batch.h"
#include "core/parameters.h"
#include "core/shape.h"
#include "core/stop_token.h"
#include "core/thread_pool.h"

namespace convnet {

struct Prediction {
  std::array<float, kClasses> a3;  // output activations
  int predicted_class = 0;         // argmax of a3 (first maximum)
};

// Forward pass for every image. INVALID_ARGUMENT when the batch fails
// ImageBatch::Validate(). `pool` may be null (runs on the calling thread).
// DEADLINE_EXCEEDED / CANCELLED when `stop` fires.
absl::StatusOr<std::vector<Prediction>> Predict(const Parameters& params, const ImageBatch& images,
                                                ThreadPool* pool, const StopToken& stop = StopToken());

struct BatchGradient {
  double mean_cost = 0.0;             // mean over the batch of C_x
  std::vector<double> costs;          // C_x per example
  std::vector<float> gradient;        // dC/dparams of the mean cost, flat layout of NETWORK.md
  std::vector<uint8_t> predicted;     // argmax a3 per example
};

// The gradient of the mean cost over the batch. INVALID_ARGUMENT when the batch
// is empty or invalid, when labels.size() differs from the number of images, or
// a label is outside 0..9 (naming its index and value). DEADLINE_EXCEEDED /
// CANCELLED when `stop` fires.
absl::StatusOr<BatchGradient> ComputeGradient(const Parameters& params, const ImageBatch& images,
                                              absl::Span<const uint8_t> labels, Cost cost,
                                              ThreadPool* pool, const StopToken& stop = StopToken());

// Everything backprop computes for one example.
struct Explanation {
  std::array<float, kClasses> z3;
  std::array<float, kClasses> a3;
  std::array<float, kClasses> delta3;  // BP1
  std::vector<float> delta1;           // [K][24][24] (BP2); non-zero only at pool argmaxes
  std::vector<uint8_t> argmax_mask;    // [K][24][24], 1 at the position each 2x2 window routes to
  double cost = 0.0;
};

// ComputeGradient plus the per-example Explanation, in the order of the images.
// `stop` is checked through both passes (the gradient, then the explanations).
absl::StatusOr<std::pair<BatchGradient, std::vector<Explanation>>> ExplainGradient(
    const Parameters& params, const ImageBatch& images, absl::Span<const uint8_t> labels, Cost cost,
    ThreadPool* pool, const StopToken& stop = StopToken());

// Cost of one example from its z3 (numerically stable; cross-entropy uses
// softplus so it stays finite where a3 rounds to 0 or 1).
double ExampleCost(Cost cost, const float* z3, int label);

// INVALID_ARGUMENT naming the index and value of the first label > 9.
absl::Status ValidateLabels(absl::Span<const uint8_t> labels);

}  // namespace convnet

#endif  // CONVNET_CORE_NETWORK_H_
