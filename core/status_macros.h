// Early-return helpers for absl::Status and absl::StatusOr (Abseil 20220623
// ships none publicly).
#ifndef CONVNET_CORE_STATUS_MACROS_H_
#define CONVNET_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CONVNET_CONCAT_INNER_(a, b) a##b
#define CONVNET_CONCAT_(a, b) CONVNET_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define CONVNET_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status convnet_status_ = (expr);           \
    if (!convnet_status_.ok()) return convnet_status_; \
  } while (false)

// `lhs = value of expr`, or returns its status when it holds an error.
#define CONVNET_ASSIGN_OR_RETURN(lhs, expr) \
  CONVNET_ASSIGN_OR_RETURN_IMPL_(CONVNET_CONCAT_(convnet_or_, __LINE__), lhs, expr)
#define CONVNET_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#endif  // CONVNET_CORE_STATUS_MACROS_H_
