#ifndef PESC_SECURITY_TOKEN_STORE_H_
#define PESC_SECURITY_TOKEN_STORE_H_

// Who may use a coordinator: tokens for people and workers, rooms restricted
// to some users, and who uploaded which blob. Kept in SQLite beside the job
// store (its own tables in the same file); a token is stored only as the
// SHA-256 of its text, so the file gives no one a usable token.
//
// Thread-safe: every method may be called from any thread. authenticate()
// answers from memory, so checking a call costs one hash and a map lookup.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace SQLite {
class Database;
}

namespace pesc {

enum class Role { kAdmin, kUser, kWorker };
const char* to_string(Role role);

// The identity a valid token stands for.
struct Identity {
  std::string name;
  Role role = Role::kUser;
  // The SHA-256 of the token itself: tells apart tokens of one name.
  std::string token_sha256;
};

struct TokenRecord {
  std::string name;
  Role role = Role::kUser;
  int64_t created_unix_ms = 0;
  int64_t revoked_unix_ms = 0;  // zero while valid
};

// The name every admin token carries.
inline constexpr std::string_view kAdminName = "admin";

// Letters, digits, '.', '_' and '-', 1 to 64 of them: a name that reads the
// same in a shell, a log and a file name.
absl::Status check_identity_name(std::string_view name);

class TokenStore {
 public:
  static absl::StatusOr<std::unique_ptr<TokenStore>> open(const std::filesystem::path& database_file);
  ~TokenStore();

  // Issues the admin token when there is no valid one; the token text is
  // returned that one time, nullopt when an admin token already exists.
  absl::StatusOr<std::optional<std::string>> ensure_admin_token();

  // A new token for `name`. Users get one name each (a second add of the
  // same valid user is refused); workers may share one name.
  absl::StatusOr<std::string> issue(const std::string& name, Role role);
  // Revokes every valid token of `name`; the number revoked.
  absl::StatusOr<int> revoke(const std::string& name);
  absl::StatusOr<std::vector<TokenRecord>> list();
  // A name for the next worker token: worker-1, worker-2, ...
  absl::StatusOr<std::string> next_worker_name();

  // Unauthenticated when the token is unknown or revoked.
  absl::StatusOr<Identity> authenticate(std::string_view token) const;

  // Rooms: empty `users` opens the room to everyone again.
  absl::Status restrict_room(const std::string& room, const std::vector<std::string>& users);
  // The users a room is restricted to; nullopt when anyone may use it.
  std::optional<std::set<std::string>> room_users(const std::string& room) const;

  // Blobs people uploaded, for downloads and the stored-bytes quota.
  absl::Status record_upload(const std::string& sha256, const std::string& user, uint64_t size);
  bool uploaded_by(const std::string& sha256, const std::string& user);
  // (sha256, size) of every blob `user` uploaded.
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> uploads_of(const std::string& user);
  // True when a job of `user` uses the blob as its process, a shared file,
  // an output or a checkpoint (the job store's blob_refs).
  bool used_by_job_of(const std::string& sha256, const std::string& user);

 private:
  explicit TokenStore(std::unique_ptr<SQLite::Database> db);
  absl::Status load();

  mutable absl::Mutex mutex_;
  std::unique_ptr<SQLite::Database> db_ ABSL_GUARDED_BY(mutex_);
  // SHA-256 of each valid token -> who it is.
  std::map<std::string, Identity> valid_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::set<std::string>> restricted_rooms_ ABSL_GUARDED_BY(mutex_);
};

// "pesc_" and 40 random hex digits.
std::string make_token();

}  // namespace pesc

#endif  // PESC_SECURITY_TOKEN_STORE_H_
