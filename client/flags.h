// Flags shared by several subcommands. Subcommand-only flags live in the
// subcommand's own file.
#ifndef CONVNET_CLIENT_FLAGS_H_
#define CONVNET_CLIENT_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

// Where the server listens; "" = $CONVNET_ADDRESS, else localhost:50051.
ABSL_DECLARE_FLAG(std::string, address);
// Deadline of each unary RPC.
ABSL_DECLARE_FLAG(absl::Duration, timeout);
// Print the result as JSON instead of text.
ABSL_DECLARE_FLAG(bool, json);
// The model a command works on, and its version (0 = latest).
ABSL_DECLARE_FLAG(std::string, model);  // "" = not given; see convnet::client::ModelFlag
ABSL_DECLARE_FLAG(int64_t, version);
// Input images and labels from IDX files (plain or .gz), and the range taken.
ABSL_DECLARE_FLAG(std::string, images);
ABSL_DECLARE_FLAG(std::string, labels);
ABSL_DECLARE_FLAG(int64_t, index);
ABSL_DECLARE_FLAG(int64_t, count);
// The cost function: "cross-entropy" or "quadratic".
ABSL_DECLARE_FLAG(std::string, cost);

namespace convnet::client {

// --model, or "mnist" when it is not given: the default of the commands that
// read a model. train requires --model instead (it never guesses which model
// a new version goes to).
std::string ModelFlag();

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_FLAGS_H_
