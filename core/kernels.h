// The fast kernels: one example's forward and backward pass, vectorised and
// allocation-free. They compute what reference.h computes, reorganised:
//  - z1 is summed in the reference's order (fused multiply-adds where the
//    processor has them), so the max-pool picks the reference's positions but
//    where two z1 are within a rounding of each other;
//  - max-pooling is done on z1 (sigma is monotonic) so only the 144*K maxima go
//    through sigma; the forward pass needs only the maxima, their positions
//    are found for the backward pass (PoolArgmax): the first maximum of z1,
//    or, where sigma saturates in float, an earlier window position whose a1
//    equals the maximum, exactly as the a1 tie rule says;
//  - only the 144*K argmax positions carry delta1, so dC/dw1 and dC/db1 sum
//    over those only, and dC/dw1 skips the windows whose inputs are all zero
//    (they add exactly nothing).
// Shapes as in reference.h. On one machine results are fully deterministic;
// processors with and without FMA differ in the last bits.
#ifndef CONVNET_CORE_KERNELS_H_
#define CONVNET_CORE_KERNELS_H_

#include <array>
#include <cstdint>
#include <vector>

#include "core/aligned_vector.h"
#include "core/cost.h"
#include "core/image_batch.h"
#include "core/shape.h"

namespace convnet {

// a0 is stored with rows padded to this stride so vector loads past column 27 stay inside.
inline constexpr int kPaddedInputStride = 32;

// Per-thread scratch memory for one example at a time with K maps.
struct Workspace {
  explicit Workspace(int k);

  int k;
  // The float arrays start on a cache line (aligned_vector.h).
  AlignedVector<float> a0;       // [28][32] (columns 28..31 are zero)
  AlignedVector<float> z1;       // [K][24][24] (+ slack for vector loads)
  AlignedVector<float> z1_max;   // [K][12][12] (+ slack), the maximum z1 of each window
  AlignedVector<float> a2;       // [K][12][12] (+ slack)
  std::vector<uint8_t> argmax;   // [K][12][12], window position 0..3 (PoolArgmax)
  AlignedVector<float> da2;      // [K][12][12]
  AlignedVector<float> delta1;   // [K][12][12], delta1 at each window's argmax
  std::vector<uint32_t> nonzero_columns;  // [28], bit c set when a0[r][c] != 0
  // ForwardImagesToZ3's window maxima and a2 of each image of pixels,
  // [images][K][12][12], sized on first use.
  AlignedVector<float> images_z1_max, images_a2;
  alignas(32) std::array<float, 16> z3{}, a3{}, delta3{};
};

// Loads 784 input activations (row-major 28x28) into ws.a0.
void LoadInput(const float* a0, Workspace& ws);

// Loads image i of the batch (a0 = pixel / 255 or the floats) into ws.a0.
void LoadImage(const ImageBatch& images, size_t i, Workspace& ws);

// Asks the processor to start fetching image i into cache (training visits
// images in shuffled order, so the hardware prefetcher cannot guess them).
void PrefetchImage(const ImageBatch& images, size_t i);

// Forward pass: fills z1, z1_max, a2, z3, a3 (not argmax: inference does not
// need it). w1, b1, w3, b3 point into a flat parameter vector for ws.k maps.
void ForwardExample(const float* w1, const float* b1, const float* w3, const float* b3, Workspace& ws);

// The forward pass up to z3 of images begin .. begin + count - 1, image j's
// z3 to z3[10 j .. 10 j + 9] (z3[10 count .. 10 count + 5] are written too,
// as zeros); a3 = sigma(z3) is left to OutputActivations. Predict applies
// sigma to its images' z3 in one loop, whose sigmas overlap one another.
// Images of pixels go through the forward kernels ForwardImagesPerCall(K) at a
// time in one call, stage by stage, so that an image's sigmas and dense sums
// do not wait on the end of its own convolution (docs/BENCHMARKS.md, "Measured
// design choices"); the window maxima and a2 of the last call's
// images are left in ws.images_z1_max and ws.images_a2 ([images][K][12][12]).
// Floats are loaded and computed one image at a time (their z1_max and a2 in
// ws's). ws.a0, nonzero_columns and z1 are the last image's, as
// LoadImage and ForwardExample leave them.
void ForwardImagesToZ3(const ImageBatch& images, size_t begin, size_t count, const float* w1, const float* b1,
                       const float* w3, const float* b3, Workspace& ws, float* z3);

// Images of pixels ForwardImagesToZ3 takes per kernel call with k maps: 16 / k
// (at least 1), so that their window maxima (16 * 144 floats, 9 KB) and a2
// stay in the first-level cache; at K = 20, one image per call.
size_t ForwardImagesPerCall(int k);

// a3 = sigma(z3) of `images` images whose z3 ForwardImagesToZ3 wrote side by
// side from z3 on (10 each); a3 has the same layout. Both hold 10 * images + 8
// floats: the count is rounded up to whole vectors of 8, inside the slack the
// last image's z3 wrote.
void OutputActivations(size_t images, const float* z3, float* a3);

// After ForwardExample: fills ws.argmax, the position (0..3, row-major) of
// each window's maximum under the tie rule of NETWORK.md. BackwardExample
// calls it; it is public for tests.
void PoolArgmax(Workspace& ws);

// Backward pass after ForwardExample: PoolArgmax, BP1 into ws.delta3, then
// adds this example's gradient to `gradient` (flat layout). Returns a fast
// float estimate of C_x (for progress reports; network.h's ExampleCost is exact).
float BackwardExample(const float* w3, int label, Cost cost, Workspace& ws, float* gradient);

// BackwardExample without dC/dw3's term a2 delta3 (BP4 for w3), which
// AddDenseWeightGradients adds for many examples at once from ws.a2 and
// ws.delta3 (GradientSum: one example at a time, the read-modify-write of
// dw3 sets the pace of the whole backward pass at K = 20).
float BackwardExampleButDenseWeights(const float* w3, int label, Cost cost, Workspace& ws, float* gradient);

// dC/dw3 += a2_e delta3_e (BP4) for examples e = 0 .. m-1 into `gradient`
// (flat layout, K maps), each element summed in example order: bit for bit
// what BackwardExample after each example adds. a2[e] points to example e's
// K*144 values; delta3 [m][16].
void AddDenseWeightGradients(int k, size_t m, const float* const* a2, const float* delta3, float* gradient);

// delta1 [K][24][24] of the last BackwardExample (zero outside the argmaxes);
// for the explain variant.
void Delta1(const Workspace& ws, float* delta1);

// Index (0..9) of the largest a3, the first one on ties.
int PredictedClass(const float* a3);

}  // namespace convnet

#endif  // CONVNET_CORE_KERNELS_H_
