#ifndef PESC_COMMON_STATUS_MACROS_H_
#define PESC_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The two macros every absl::Status code base grows; absl keeps its own
// private, so pesc has these.
#define PESC_CONCAT_INNER(a, b) a##b
#define PESC_CONCAT(a, b) PESC_CONCAT_INNER(a, b)

#define PESC_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    if (absl::Status pesc_status_ = (expr);        \
        !pesc_status_.ok()) {                      \
      return pesc_status_;                         \
    }                                              \
  } while (false)

#define PESC_ASSIGN_OR_RETURN(lhs, expr) \
  PESC_ASSIGN_OR_RETURN_IMPL(PESC_CONCAT(pesc_statusor_, __LINE__), lhs, expr)

#define PESC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

#endif  // PESC_COMMON_STATUS_MACROS_H_
