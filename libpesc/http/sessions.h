#ifndef PESC_HTTP_SESSIONS_H_
#define PESC_HTTP_SESSIONS_H_

// Browser sessions of the web dashboard: a login with a token opens one,
// named by a random id the browser keeps in an HttpOnly cookie, with a CSRF
// token the page sends back on every change. A session keeps the token it
// was opened with and every request authenticates it again, so a revoked
// token ends its sessions at once. Kept in memory: a restart logs people out.
//
// Thread-safe.

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pesc::http {

struct Session {
  std::string id;
  std::string token;
  std::string csrf_token;
  absl::Time expires;
};

class Sessions {
 public:
  static constexpr absl::Duration kLifetime = absl::Hours(12);

  Session open(const std::string& token);
  std::optional<Session> find(const std::string& id);
  void close(const std::string& id);

 private:
  void drop_expired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mutex_);
};

// Compares secrets in time that does not depend on where they differ.
bool same_secret(const std::string& a, const std::string& b);

}  // namespace pesc::http

#endif  // PESC_HTTP_SESSIONS_H_
