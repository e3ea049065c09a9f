// Checks of the responses the load clients get back OK: a Predict must equal,
// bit for bit, what the version it names computes (the core is deterministic
// for any thread count, and the test links the same core code as the server);
// a GetGradients must equal the core's ComputeGradient for that version.
#ifndef CONVNET_TESTS_LOAD_RESPONSE_CHECKS_H_
#define CONVNET_TESTS_LOAD_RESPONSE_CHECKS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "convnet/v1/convnet.pb.h"
#include "core/dataset.h"
#include "reference_models.h"

namespace convnet::load_testing {

// OK when `response` has one prediction per index in `indices` (positions in
// the reference images) equal to `reference.predictions` for it: the same 10
// outputs and the same class. INTERNAL naming the first difference otherwise.
absl::Status CheckPredictResponse(const VersionReference& reference, absl::Span<const size_t> indices,
                                  const v1::PredictResponse& response);

// OK when `response` (a cross-entropy GetGradients of the reference images
// `indices` with their labels) equals the core's ComputeGradient with
// `reference.parameters`: K, mean cost, per-example costs and classes, and the
// gradient. INTERNAL naming the first difference otherwise.
absl::Status CheckGradientsResponse(const VersionReference& reference, const Dataset& images,
                                    absl::Span<const size_t> indices, const v1::GetGradientsResponse& response);

}  // namespace convnet::load_testing

#endif  // CONVNET_TESTS_LOAD_RESPONSE_CHECKS_H_
