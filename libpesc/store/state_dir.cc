#include "store/state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "ledger/sqlite_job_store.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

constexpr char kLockFile[] = "coordinator.lock";
constexpr char kBlobsDir[] = "blobs";

absl::Status errno_status(const std::string& doing) {
  return absl::PermissionDeniedError(absl::StrCat("cannot ", doing, ": ", std::strerror(errno)));
}

bool has_entries(const fs::path& dir) {
  std::error_code error;
  return fs::is_directory(dir, error) && !fs::is_empty(dir, error) && !error;
}

// Blobs or token files: a farm ran here, and its database must be there.
bool holds_earlier_farm(const fs::path& state_dir) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(state_dir, error)) {
    if (entry.path().extension() == ".token") return true;
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(state_dir / kBlobsDir, error)) {
    if (entry.path().filename() != "tmp" && has_entries(entry.path())) return true;
  }
  return false;
}

std::string restore_advice(const fs::path& state_dir) {
  return absl::StrCat(
      "To restore a backup made with `pesc-coordinator backup DEST`, start the coordinator with --state-dir DEST "
      "(or copy DEST's files into ", state_dir.string(), " after moving its own aside); to start an empty farm, "
      "move ", state_dir.string(), " aside. README: \"Back up and restore the coordinator\"");
}

absl::Status copy_into(const fs::path& from, const fs::path& to, fs::copy_options options) {
  std::error_code error;
  fs::copy(from, to, options, error);
  if (error) return absl::InternalError(absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", error.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDirLock>> StateDirLock::take(const fs::path& state_dir) {
  const fs::path file = state_dir / kLockFile;
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status(absl::StrCat("open ", file.string()));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const bool held = errno == EWOULDBLOCK;
    ::close(fd);
    if (!held) return errno_status(absl::StrCat("lock ", file.string()));
    absl::StatusOr<std::string> holder = read_file(file);
    std::string who(absl::StripAsciiWhitespace(holder.ok() ? *holder : ""));
    return absl::FailedPreconditionError(absl::StrCat(
        "state dir ", state_dir.string(), " is in use by ", who.empty() ? "another process" : who,
        ": one coordinator per state dir (stop that one, or give this one another --state-dir)"));
  }
  const std::string me = absl::StrCat(program_invocation_short_name, " pid ", ::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The lock holds all the same; a second coordinator just cannot name us.
  }
  return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock() { ::close(fd_); }

fs::path state_database_file(const fs::path& state_dir) { return state_dir / "pesc.sqlite"; }

absl::Status make_private_dir(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
  std::error_code not_ours;
  // A dir someone else owns (root's, lent to the coordinator's group) keeps
  // its mode; the files inside are 0600 all the same.
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, not_ours);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<JobStore>> open_state_database(const fs::path& state_dir, Durability durability) {
  const fs::path file = state_database_file(state_dir);
  std::error_code error;
  const uintmax_t size = fs::exists(file, error) ? fs::file_size(file, error) : 0;
  if ((size == 0 || error) && holds_earlier_farm(state_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the state database ", file.string(), error ? " cannot be read" : " is empty or missing", ", but ",
                     state_dir.string(), " holds the blobs or tokens of a farm: starting would lose its every job. ",
                     restore_advice(state_dir)));
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store = SqliteJobStore::open(file, durability);
  if (store.status().code() == absl::StatusCode::kDataLoss) {
    return absl::DataLossError(absl::StrCat(store.status().message(), ". ", restore_advice(state_dir)));
  }
  return store;
}

absl::Status back_up_state_dir(const fs::path& state_dir, const fs::path& destination) {
  if (has_entries(destination)) {
    return absl::AlreadyExistsError(absl::StrCat(destination.string(), " is not empty; back up into a new directory"));
  }
  PESC_RETURN_IF_ERROR(make_private_dir(destination));
  PESC_RETURN_IF_ERROR(SqliteJobStore::back_up(state_database_file(state_dir), state_database_file(destination)));
  // After the database: blobs go only with their jobs, so every blob the
  // copied database names is still there to copy.
  PESC_RETURN_IF_ERROR(make_private_dir(destination / kBlobsDir));
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(state_dir / kBlobsDir, error)) {
    if (entry.path().filename() == "tmp") continue;  // uploads under way
    PESC_RETURN_IF_ERROR(copy_into(entry.path(), destination / kBlobsDir / entry.path().filename(),
                                   fs::copy_options::recursive));
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(state_dir, error)) {
    if (entry.path().extension() != ".token") continue;
    PESC_RETURN_IF_ERROR(copy_into(entry.path(), destination / entry.path().filename(), fs::copy_options::none));
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", state_dir.string(), ": ", error.message()));
  return absl::OkStatus();
}

}  // namespace pesc
