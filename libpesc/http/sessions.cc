#include "http/sessions.h"

#include <openssl/crypto.h>

#include "security/token_store.h"

namespace pesc::http {

Session Sessions::open(const std::string& token) {
  Session session{make_token(), token, make_token(), absl::Now() + kLifetime};
  absl::MutexLock lock(&mutex_);
  drop_expired();
  sessions_[session.id] = session;
  return session;
}

std::optional<Session> Sessions::find(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto found = sessions_.find(id);
  if (found == sessions_.end() || found->second.expires < absl::Now()) return std::nullopt;
  return found->second;
}

void Sessions::close(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  sessions_.erase(id);
}

void Sessions::drop_expired() {
  const absl::Time now = absl::Now();
  std::erase_if(sessions_, [now](const auto& entry) { return entry.second.expires < now; });
}

bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace pesc::http
