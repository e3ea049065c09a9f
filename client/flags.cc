#include "client/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, address, "",
          "server address HOST:PORT (default: $CONVNET_ADDRESS, else localhost:50051)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30),
          "deadline of each call (the watch stream of train --wait has none)");
ABSL_FLAG(bool, json, false, "print the result as JSON instead of text");
ABSL_FLAG(std::string, model, "",
          "model name (default for predict, gradients and bench: mnist; required for train)");
ABSL_FLAG(int64_t, version, 0, "model version (0 = the latest)");
ABSL_FLAG(std::string, images, "",
          "IDX image file (plain or .gz), e.g. data/mnist/t10k-images-idx3-ubyte.gz");
ABSL_FLAG(std::string, labels, "", "IDX label file (plain or .gz) matching --images");
ABSL_FLAG(int64_t, index, 0, "first image taken from --images");
ABSL_FLAG(int64_t, count, 1, "number of images taken from --images");
ABSL_FLAG(std::string, cost, "cross-entropy", "cost function: cross-entropy or quadratic");

namespace convnet::client {

std::string ModelFlag() {
  const std::string model = absl::GetFlag(FLAGS_model);
  return model.empty() ? "mnist" : model;
}

}  // namespace convnet::client
