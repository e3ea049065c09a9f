// Small durable-write helpers shared by the model repository and the job
// store: a file replaced atomically, a directory's entries made durable, and
// filesystem errors as absl::Status naming the path.
#ifndef CONVNET_SERVER_DURABLE_FILE_H_
#define CONVNET_SERVER_DURABLE_FILE_H_

#include <filesystem>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace convnet::server {

// Temporary files and directories start with this; whoever owns a directory
// removes such leftovers of a crash when it opens it.
inline constexpr absl::string_view kTempPrefix = ".tmp-";

// "<what> <path>: <reason>" as PERMISSION_DENIED (permissions, read-only
// filesystem) or INTERNAL (anything else).
absl::Status FileSystemError(const std::error_code& ec, absl::string_view what,
                             const std::filesystem::path& path);

// Makes a directory's entries (creations, renames, removals) durable.
absl::Status FsyncDirectory(const std::filesystem::path& dir);

// Replaces `path` with `bytes` atomically and durably: writes
// "<dir>/.tmp-<file name>-<random>", fsyncs it, renames it over `path` and
// fsyncs the directory. After a crash at any moment `path` holds either its
// old or its new contents. INTERNAL/PERMISSION_DENIED naming the path on
// failure; the temporary file is removed then.
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view bytes);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_DURABLE_FILE_H_
