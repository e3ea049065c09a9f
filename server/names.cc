#include "server/names.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace convnet::server {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !IsLowerAlnum(name[0])) return false;
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

absl::Status ValidateName(absl::string_view field, absl::string_view name) {
  if (IsValidName(name)) return absl::OkStatus();
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  return absl::InvalidArgumentError(absl::StrCat(field, " must match [a-z0-9][a-z0-9_-]* (at most ",
                                                 kMaxNameLength, " characters), got ", Quote(name)));
}

std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() > kMaxShown) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxShown)), "\"... (",
                        text.size(), " bytes)");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

}  // namespace convnet::server
