// Model and dataset names. A name matches [a-z0-9][a-z0-9_-]* and is at most
// kMaxNameLength characters long, so it is always a single, harmless path
// component (no "/", no ".", no "..", never hidden, never empty). Names are
// used as paths only after this check, and only as one directory level.
#ifndef CONVNET_SERVER_NAMES_H_
#define CONVNET_SERVER_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace convnet::server {

inline constexpr size_t kMaxNameLength = 64;

bool IsValidName(absl::string_view name);

// OK for a valid name; otherwise INVALID_ARGUMENT naming `field` and the value
// (escaped and shortened so that any bytes are safe to log and return).
absl::Status ValidateName(absl::string_view field, absl::string_view name);

// `text` in double quotes, C-escaped, cut to 80 characters: safe to put in a
// message whatever bytes a client sent.
std::string Quote(absl::string_view text);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_NAMES_H_
