#include "server/paging.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace convnet::server {
namespace {

// Tokens are web-safe base64 of "<kTokenVersion>\n<query>\n<last key>".
constexpr absl::string_view kTokenVersion = "p1";

// Room for a response's fields other than its items.
constexpr size_t kPageReserve = 4096;
// Two field tags and two length prefixes (an item nested in an item).
constexpr size_t kItemOverhead = 2 * (2 + 5);

}  // namespace

absl::StatusOr<int> ResolvePageSize(absl::string_view field, int32_t page_size) {
  if (page_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be >= 0 (0 = the default of ", kDefaultPageSize, "), got ", page_size));
  }
  if (page_size == 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : static_cast<int>(page_size);
}

std::string EncodePageToken(absl::string_view query, absl::string_view last_key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenVersion, "\n", query, "\n", last_key));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view field, absl::string_view token,
                                            absl::string_view query) {
  if (token.empty()) return std::string();
  std::string decoded;
  const std::string prefix = absl::StrCat(kTokenVersion, "\n", query, "\n");
  // Well formed: the version, a query and a non-empty key, "\n"-separated.
  const bool well_formed = absl::WebSafeBase64Unescape(token, &decoded) &&
                           absl::StartsWith(decoded, absl::StrCat(kTokenVersion, "\n")) &&
                           decoded.find('\n', kTokenVersion.size() + 1) != std::string::npos &&
                           !absl::EndsWith(decoded, "\n");
  if (!well_formed) return MalformedPageToken(field);
  if (!absl::StartsWith(decoded, prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": the token belongs to a different request (every field but page_size must stay "
                            "the same from page to page)"));
  }
  return decoded.substr(prefix.size());
}

absl::Status MalformedPageToken(absl::string_view field) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": not a page token of this server (pass the next_page_token of the previous page, "
                          "or \"\" for the first page)"));
}

PageBudget::PageBudget(size_t max_message_bytes)
    : left_(max_message_bytes > kPageReserve ? max_message_bytes - kPageReserve : 0) {}

bool PageBudget::Take(size_t item_bytes) {
  const size_t cost = item_bytes + kItemOverhead;
  if (cost > left_) return false;
  left_ -= cost;
  return true;
}

}  // namespace convnet::server
