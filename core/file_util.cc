#include "core/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace convnet {
namespace {

namespace fs = std::filesystem;

// Closes the descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports close's error (a write may only fail there).
  std::error_code Close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? std::error_code() : LastError();
  }

 private:
  int fd_;
};

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

std::error_code LastError() { return std::error_code(errno, std::generic_category()); }

absl::Status FileError(int error_number, absl::string_view what, const fs::path& path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(what, " ", path.string()));
}

absl::Status StorageError(const std::error_code& ec, absl::string_view what, const fs::path& path) {
  absl::Status status = FileError(ec.value(), what, path);
  if (status.code() == absl::StatusCode::kPermissionDenied) return status;
  return absl::InternalError(status.message());
}

absl::StatusOr<std::string> ReadFile(const fs::path& path, size_t max_bytes) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return FileError(errno, "cannot read", path);
  std::string contents;
  char buffer[1 << 16];
  while (contents.size() <= max_bytes) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "cannot read", path);
    }
    if (n == 0) return contents;
    contents.append(buffer, static_cast<size_t>(n));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(path.string(), " is larger than ", max_bytes, " bytes; is it the right file?"));
}

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path, size_t max_bytes) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " must not be empty"));
  absl::StatusOr<std::string> contents = ReadFile(path, max_bytes);
  if (!contents.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", contents.status().message()));
  return contents;
}

absl::Status FsyncDirectory(const fs::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return StorageError(LastError(), "cannot open directory", dir);
  if (::fsync(fd.get()) != 0) return StorageError(LastError(), "cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const fs::path& path, absl::string_view bytes,
                                 absl::FunctionRef<void()> before_rename) {
  absl::BitGen random;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path temp = dir / absl::StrFormat("%s%s-%016x", kTempPrefix, path.filename().string(),
                                              absl::Uniform<uint64_t>(random));
  std::error_code ec;
  {
    FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) return StorageError(LastError(), "cannot create", temp);
    ec = WriteAndSync(fd.get(), bytes);
    const std::error_code close_ec = fd.Close();
    if (!ec) ec = close_ec;
  }
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return StorageError(ec, "cannot write", temp);
  }
  before_rename();
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    return StorageError(ec, "cannot rename a temporary file over", path);
  }
  return FsyncDirectory(dir);
}

absl::Status WriteFileAtomically(const fs::path& path, absl::string_view bytes) {
  return WriteFileAtomically(path, bytes, [] {});
}

}  // namespace convnet
