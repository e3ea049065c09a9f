// Paging of the methods that list (ListModels, GetModel's versions,
// ListTrainingJobs), after Google's AIP-158: a request's page_size (0 = the
// default, above the maximum = the maximum, negative = INVALID_ARGUMENT) and
// page_token ("" = the first page), a response's next_page_token ("" = the
// last page).
//
// A token names the last item a page returned (a model name, a version
// number, a job id), never a position in a list, so items inserted or removed
// between two pages do not shift the pages that follow: every item present
// for the whole walk is returned exactly once. A token is bound to its query
// (the method and its filters): using it with another query, or a token the
// server did not make, is INVALID_ARGUMENT.
#ifndef CONVNET_SERVER_PAGING_H_
#define CONVNET_SERVER_PAGING_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet::server {

// Items per page when a request's page_size is 0, and the most a page holds.
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// The page size a request asks for: kDefaultPageSize for 0, kMaxPageSize for
// anything above it. INVALID_ARGUMENT naming `field` for a negative value.
absl::StatusOr<int> ResolvePageSize(absl::string_view field, int32_t page_size);

// An opaque token for the page after the item `last_key` (never empty) of a
// request whose paging-independent fields `query` describes (e.g.
// "ListTrainingJobs model=digits state=0").
std::string EncodePageToken(absl::string_view query, absl::string_view last_key);

// The `last_key` of a token EncodePageToken(query, last_key) made; "" for an
// empty token (the first page). INVALID_ARGUMENT naming `field` for a token
// that is malformed or was made for another query.
absl::StatusOr<std::string> DecodePageToken(absl::string_view field, absl::string_view token,
                                            absl::string_view query);

// INVALID_ARGUMENT naming `field`: the token is not one this server made
// (also for a token whose key the caller cannot parse).
absl::Status MalformedPageToken(absl::string_view field);

// Ends a page before its response exceeds the message limit. Every item is
// charged its serialized size plus the most its field tags and length
// prefixes can add (two levels of nesting); a fixed reserve is kept for the
// response's other fields (next_page_token, a model's name).
class PageBudget {
 public:
  explicit PageBudget(size_t max_message_bytes);

  // True, and the item counted, when an item of `item_bytes` (its
  // ByteSizeLong) still fits; false otherwise (nothing counted).
  bool Take(size_t item_bytes);

 private:
  size_t left_;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_PAGING_H_
