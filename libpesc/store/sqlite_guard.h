#ifndef PESC_STORE_SQLITE_GUARD_H_
#define PESC_STORE_SQLITE_GUARD_H_

// SQLiteCpp reports failures by throwing; the library speaks Status. Every
// store that keeps its rows in SQLite runs its statements through this.

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <exception>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pesc {

// The Status for a SQLite failure, reading "<context>: <the exception's
// words>": a full disk is ResourceExhausted and a damaged file DataLoss, so
// callers can tell an operator what to do; anything else is Internal.
inline absl::Status sqlite_failure(absl::string_view context, const std::exception& error) {
  const std::string message = absl::StrCat(context, ": ", error.what());
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&error);
  switch (sqlite == nullptr ? SQLITE_ERROR : sqlite->getErrorCode()) {
    case SQLITE_FULL: return absl::ResourceExhaustedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return absl::DataLossError(message);
    default: return absl::InternalError(message);
  }
}

// fn() (returning Status or StatusOr), with an exception turned into the
// sqlite_failure() of "<prefix><what>".
template <typename Fn>
auto sqlite_guarded(absl::string_view prefix, absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& error) {
    return sqlite_failure(absl::StrCat(prefix, what), error);
  }
}

}  // namespace pesc

#endif  // PESC_STORE_SQLITE_GUARD_H_
