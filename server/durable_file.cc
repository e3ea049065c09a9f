#include "server/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/crash_point.h"

namespace convnet::server {
namespace {

namespace fs = std::filesystem;

std::error_code LastError() { return std::error_code(errno, std::generic_category()); }

// Writes all of `bytes` to `fd` and fsyncs it; an errno-based error otherwise.
std::error_code WriteAndSync(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastError();
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0) return LastError();
  return {};
}

}  // namespace

absl::Status FileSystemError(const std::error_code& ec, absl::string_view what, const fs::path& path) {
  std::string message = absl::StrCat(what, " ", path.string(), ": ", ec.message());
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted ||
      ec == std::errc::read_only_file_system) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

absl::Status FsyncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FileSystemError(LastError(), "cannot open directory", dir);
  const int rc = ::fsync(fd);
  const std::error_code ec = LastError();
  ::close(fd);
  if (rc != 0) return FileSystemError(ec, "cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const fs::path& path, absl::string_view bytes) {
  absl::BitGen random;
  const fs::path dir = path.parent_path();
  const fs::path temp = dir / absl::StrFormat("%s%s-%016x", kTempPrefix, path.filename().string(),
                                              absl::Uniform<uint64_t>(random));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return FileSystemError(LastError(), "cannot create", temp);
  std::error_code ec = WriteAndSync(fd, bytes);
  if (::close(fd) != 0 && !ec) ec = LastError();
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return FileSystemError(ec, "cannot write", temp);
  }
  CrashPoint("durable_file.after_temp_write");
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return FileSystemError(ec, "cannot rename a temporary file over", path);
  }
  return FsyncDirectory(dir);
}

}  // namespace convnet::server
