#ifndef PESC_STORE_SQLITE_GUARD_H_
#define PESC_STORE_SQLITE_GUARD_H_

// SQLiteCpp reports failures by throwing; the library speaks Status. Every
// store that keeps its rows in SQLite runs its statements through this.

#include <exception>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pesc {

// fn() (returning Status or StatusOr), with an exception turned into an
// InternalError reading "<prefix><what>: <the exception's words>".
template <typename Fn>
auto sqlite_guarded(std::string_view prefix, std::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& error) {
    return absl::InternalError(absl::StrCat(std::string(prefix), std::string(what), ": ", error.what()));
  }
}

}  // namespace pesc

#endif  // PESC_STORE_SQLITE_GUARD_H_
