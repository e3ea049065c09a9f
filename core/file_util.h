// The project's file primitives, one of each: reading a whole file, replacing
// a file atomically and durably, making a directory's entries durable, and
// turning an errno into an absl::Status that names the path. The model file
// (core), the model repository and the job store (server) and the files that
// flags name (server and client) all go through these.
#ifndef CONVNET_CORE_FILE_UTIL_H_
#define CONVNET_CORE_FILE_UTIL_H_

#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet {

// Temporary files and directories start with this; whoever owns a directory
// removes such leftovers of a crash when it opens it.
inline constexpr absl::string_view kTempPrefix = ".tmp-";

// absl::ErrnoToStatus(error_number, "<what> <path>"): the errno's canonical
// code (NOT_FOUND, PERMISSION_DENIED, ...) and "<what> <path>: <reason>".
absl::Status FileError(int error_number, absl::string_view what, const std::filesystem::path& path);

// For writes of the program's own state, where a NOT_FOUND or
// ALREADY_EXISTS would misdescribe the failure to the caller's caller: as
// FileError, but PERMISSION_DENIED (permissions, a read-only filesystem) or
// INTERNAL (anything else). `ec` is a std::filesystem or errno error code.
absl::Status StorageError(const std::error_code& ec, absl::string_view what, const std::filesystem::path& path);

// errno as a std::error_code, for StorageError after a failed system call.
std::error_code LastError();

// The whole contents of `path`. FileError's status for "cannot read <path>"
// when it cannot be opened or read (NOT_FOUND when missing, FAILED_PRECONDITION
// for a directory, ...); FAILED_PRECONDITION "<path> is larger than
// <max_bytes> bytes" when it is.
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path,
                                     size_t max_bytes = std::numeric_limits<size_t>::max());

// ReadFile of the file that command-line flag `flag` (e.g. "--tls_cert")
// names, for small files such as certificates and tokens. INVALID_ARGUMENT
// "<flag>: <ReadFile's message>" on any failure (a flag names the wrong file),
// "<flag> must not be empty" for an empty path.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path, size_t max_bytes);

// Makes a directory's entries (creations, renames, removals) durable.
// StorageError's codes naming the directory on failure.
absl::Status FsyncDirectory(const std::filesystem::path& dir);

// Replaces `path` with `bytes` atomically and durably: writes
// "<dir>/.tmp-<file name>-<random>", fsyncs it, calls `before_rename` (a seam
// for crash tests; it must not fail), renames it over `path` and fsyncs the
// directory. After a crash at any moment `path` holds either its old or its
// new contents. StorageError's codes naming the path on failure; the
// temporary file is removed then.
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view bytes,
                                 absl::FunctionRef<void()> before_rename);
absl::Status WriteFileAtomically(const std::filesystem::path& path, absl::string_view bytes);

}  // namespace convnet

#endif  // CONVNET_CORE_FILE_UTIL_H_
