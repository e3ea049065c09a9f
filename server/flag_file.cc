#include "server/flag_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace convnet::server {

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path, size_t max_bytes) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " must not be empty"));
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  // One byte more than allowed tells "too long" from "exactly max_bytes".
  std::string contents(max_bytes + 1, '\0');
  errno = 0;
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path, ": ",
                                                   errno != 0 ? std::strerror(errno) : "read error"));
  }
  contents.resize(static_cast<size_t>(in.gcount()));
  if (contents.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " is larger than ", max_bytes, " bytes; is it the right file?"));
  }
  return contents;
}

}  // namespace convnet::server
