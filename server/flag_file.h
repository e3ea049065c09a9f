// Reading the small files that server flags name (the bearer token, the TLS
// certificates and keys), with errors that name the flag.
#ifndef CONVNET_SERVER_FLAG_FILE_H_
#define CONVNET_SERVER_FLAG_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet::server {

// The whole contents of `path`, which flag `flag` (e.g. "--tls_cert") named.
// INVALID_ARGUMENT "<flag>: cannot read <path>: <reason>" when the file cannot
// be opened or read (a directory included), and when it is longer than
// `max_bytes` (the wrong file, most likely).
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path, size_t max_bytes);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_FLAG_FILE_H_
