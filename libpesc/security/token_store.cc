#include "security/token_store.h"

#include <openssl/evp.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "store/sqlite_guard.h"

namespace pesc {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS auth_tokens(
  id INTEGER PRIMARY KEY,
  sha256 TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS auth_tokens_by_name ON auth_tokens(name);
CREATE TABLE IF NOT EXISTS auth_room_users(
  room TEXT NOT NULL,
  user TEXT NOT NULL,
  PRIMARY KEY(room, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_blob_uploads(
  sha256 TEXT NOT NULL,
  user TEXT NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY(sha256, user)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS auth_blob_uploads_by_user ON auth_blob_uploads(user);
)sql";

template <typename Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  return sqlite_guarded("token store: cannot ", what, std::forward<Fn>(fn));
}

// SHA-256 in lowercase hex with the digest fetched once: OpenSSL 3 looks a
// digest up by name on every plain call, which is most of the cost of
// checking a token (measured: ~10 us per call down to ~1 us).
std::string token_hash(std::string_view token) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (sha256 == nullptr || EVP_Digest(token.data(), token.size(), digest, &length, sha256, nullptr) != 1) {
    return sha256_hex(token);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kDigits[digest[i] >> 4]);
    hex.push_back(kDigits[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace

const char* to_string(Role role) {
  switch (role) {
    case Role::kAdmin: return "admin";
    case Role::kUser: return "user";
    case Role::kWorker: return "worker";
  }
  return "unknown";
}

absl::Status check_identity_name(std::string_view name) {
  bool fine = !name.empty() && name.size() <= 64;
  for (char c : name) fine = fine && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-');
  if (fine) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", std::string(name.substr(0, 80)), "\" is not a usable name: use 1 to 64 letters, digits, '.', '_' or '-'"));
}

std::string make_token() { return absl::StrCat("pesc_", random_hex(20)); }

TokenStore::TokenStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
TokenStore::~TokenStore() = default;

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::open(const std::filesystem::path& database_file) {
  return guarded("open", [&]() -> absl::StatusOr<std::unique_ptr<TokenStore>> {
    auto db = std::make_unique<SQLite::Database>(database_file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->setBusyTimeout(5000);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec(kSchema);
    auto store = std::unique_ptr<TokenStore>(new TokenStore(std::move(db)));
    if (absl::Status status = store->load(); !status.ok()) return status;
    return store;
  });
}

absl::Status TokenStore::load() {
  absl::MutexLock lock(&mutex_);
  return guarded("load", [&]() -> absl::Status {
    SQLite::Statement tokens(*db_, "SELECT sha256, name, role FROM auth_tokens WHERE revoked_ms = 0");
    while (tokens.executeStep()) {
      valid_[tokens.getColumn(0).getString()] =
          Identity{tokens.getColumn(1).getString(), static_cast<Role>(tokens.getColumn(2).getInt())};
    }
    SQLite::Statement rooms(*db_, "SELECT room, user FROM auth_room_users");
    while (rooms.executeStep()) restricted_rooms_[rooms.getColumn(0).getString()].insert(rooms.getColumn(1).getString());
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<std::string>> TokenStore::ensure_admin_token() {
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [hash, identity] : valid_) {
      if (identity.role == Role::kAdmin) return std::nullopt;
    }
  }
  absl::StatusOr<std::string> token = issue(std::string(kAdminName), Role::kAdmin);
  if (!token.ok()) return token.status();
  return std::optional<std::string>(*std::move(token));
}

absl::StatusOr<std::string> TokenStore::issue(const std::string& name, Role role) {
  if (absl::Status status = check_identity_name(name); !status.ok()) return status;
  absl::MutexLock lock(&mutex_);
  for (const auto& [hash, identity] : valid_) {
    if (identity.name != name) continue;
    if (identity.role != role) {
      return absl::AlreadyExistsError(
          absl::StrCat("\"", name, "\" is already the name of a ", to_string(identity.role), "; pick another"));
    }
    if (role == Role::kUser) {
      return absl::AlreadyExistsError(absl::StrCat("user \"", name, "\" already has a token; revoke it first (`pesc user revoke ",
                                                   name, "`) to issue a new one"));
    }
  }
  std::string token = make_token();
  std::string hash = token_hash(token);
  absl::Status stored = guarded("store a token", [&]() -> absl::Status {
    SQLite::Statement insert(*db_, "INSERT INTO auth_tokens(sha256, name, role, created_ms) VALUES(?, ?, ?, ?)");
    insert.bind(1, hash);
    insert.bind(2, name);
    insert.bind(3, static_cast<int>(role));
    insert.bind(4, static_cast<int64_t>(now_unix_ms()));
    insert.exec();
    return absl::OkStatus();
  });
  if (!stored.ok()) return stored;
  valid_[hash] = Identity{name, role};
  return token;
}

absl::StatusOr<int> TokenStore::revoke(const std::string& name) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<int> revoked = guarded("revoke", [&]() -> absl::StatusOr<int> {
    SQLite::Statement update(*db_, "UPDATE auth_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms = 0");
    update.bind(1, static_cast<int64_t>(now_unix_ms()));
    update.bind(2, name);
    return update.exec();
  });
  if (!revoked.ok()) return revoked;
  std::erase_if(valid_, [&](const auto& entry) { return entry.second.name == name; });
  return revoked;
}

absl::StatusOr<std::vector<TokenRecord>> TokenStore::list() {
  absl::MutexLock lock(&mutex_);
  return guarded("list", [&]() -> absl::StatusOr<std::vector<TokenRecord>> {
    std::vector<TokenRecord> records;
    SQLite::Statement select(*db_, "SELECT name, role, created_ms, revoked_ms FROM auth_tokens ORDER BY id");
    while (select.executeStep()) {
      records.push_back(TokenRecord{select.getColumn(0).getString(), static_cast<Role>(select.getColumn(1).getInt()),
                                    select.getColumn(2).getInt64(), select.getColumn(3).getInt64()});
    }
    return records;
  });
}

absl::StatusOr<std::string> TokenStore::next_worker_name() {
  absl::MutexLock lock(&mutex_);
  return guarded("count worker tokens", [&]() -> absl::StatusOr<std::string> {
    SQLite::Statement count(*db_, "SELECT COUNT(*) FROM auth_tokens WHERE role = ?");
    count.bind(1, static_cast<int>(Role::kWorker));
    count.executeStep();
    return absl::StrCat("worker-", count.getColumn(0).getInt64() + 1);
  });
}

absl::StatusOr<Identity> TokenStore::authenticate(std::string_view token) const {
  std::string hash = token_hash(token);
  absl::MutexLock lock(&mutex_);
  auto found = valid_.find(hash);
  if (found == valid_.end()) {
    return absl::UnauthenticatedError(
        "this token is not valid (unknown or revoked): ask the coordinator's admin for a new one "
        "(`pesc user add NAME` issues it)");
  }
  Identity identity = found->second;
  identity.token_sha256 = std::move(hash);
  return identity;
}

absl::Status TokenStore::restrict_room(const std::string& room, const std::vector<std::string>& users) {
  if (room.empty() || room.size() > 64) return absl::InvalidArgumentError("a room name must have 1 to 64 characters");
  for (const std::string& user : users) {
    if (absl::Status status = check_identity_name(user); !status.ok()) return status;
  }
  absl::MutexLock lock(&mutex_);
  absl::Status stored = guarded("restrict a room", [&]() -> absl::Status {
    SQLite::Transaction transaction(*db_);
    SQLite::Statement clear(*db_, "DELETE FROM auth_room_users WHERE room = ?");
    clear.bind(1, room);
    clear.exec();
    for (const std::string& user : users) {
      SQLite::Statement insert(*db_, "INSERT OR IGNORE INTO auth_room_users(room, user) VALUES(?, ?)");
      insert.bind(1, room);
      insert.bind(2, user);
      insert.exec();
    }
    transaction.commit();
    return absl::OkStatus();
  });
  if (!stored.ok()) return stored;
  if (users.empty()) {
    restricted_rooms_.erase(room);
  } else {
    restricted_rooms_[room] = std::set<std::string>(users.begin(), users.end());
  }
  return absl::OkStatus();
}

std::optional<std::set<std::string>> TokenStore::room_users(const std::string& room) const {
  absl::MutexLock lock(&mutex_);
  auto found = restricted_rooms_.find(room);
  if (found == restricted_rooms_.end()) return std::nullopt;
  return found->second;
}

absl::Status TokenStore::record_upload(const std::string& sha256, const std::string& user, uint64_t size) {
  absl::MutexLock lock(&mutex_);
  return guarded("record an upload", [&]() -> absl::Status {
    SQLite::Statement insert(*db_, "INSERT OR IGNORE INTO auth_blob_uploads(sha256, user, size) VALUES(?, ?, ?)");
    insert.bind(1, sha256);
    insert.bind(2, user);
    insert.bind(3, static_cast<int64_t>(size));
    insert.exec();
    return absl::OkStatus();
  });
}

bool TokenStore::uploaded_by(const std::string& sha256, const std::string& user) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<bool> found = guarded("look up an upload", [&]() -> absl::StatusOr<bool> {
    SQLite::Statement select(*db_, "SELECT 1 FROM auth_blob_uploads WHERE sha256 = ? AND user = ?");
    select.bind(1, sha256);
    select.bind(2, user);
    return select.executeStep();
  });
  return found.ok() && *found;
}

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> TokenStore::uploads_of(const std::string& user) {
  absl::MutexLock lock(&mutex_);
  return guarded("list uploads", [&]() -> absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> {
    std::vector<std::pair<std::string, uint64_t>> uploads;
    SQLite::Statement select(*db_, "SELECT sha256, size FROM auth_blob_uploads WHERE user = ?");
    select.bind(1, user);
    while (select.executeStep()) {
      uploads.emplace_back(select.getColumn(0).getString(), static_cast<uint64_t>(select.getColumn(1).getInt64()));
    }
    return uploads;
  });
}

bool TokenStore::used_by_job_of(const std::string& sha256, const std::string& user) {
  absl::MutexLock lock(&mutex_);
  // Reads the job store's tables (jobs, blob_refs) in the same file: the
  // job store already notes every blob a job uses, and results reach a
  // client only after the transaction that noted them has committed.
  absl::StatusOr<bool> found = guarded("look up a job's blob", [&]() -> absl::StatusOr<bool> {
    SQLite::Statement select(*db_,
                             "SELECT 1 FROM blob_refs JOIN jobs ON jobs.id = blob_refs.job_id "
                             "WHERE blob_refs.sha256 = ? AND jobs.user = ? LIMIT 1");
    select.bind(1, sha256);
    select.bind(2, user);
    return select.executeStep();
  });
  return found.ok() && *found;
}

}  // namespace pesc
