#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace pesc {
namespace fs = std::filesystem;

absl::StatusOr<std::string> read_file(const fs::path& path) {
  // Plain read(2)s: a worker reads every rank's output.txt with this.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read ", path.string(), ": ", std::strerror(errno)));
  std::string contents;
  char buffer[65536];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      contents.append(buffer, static_cast<size_t>(got));
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      const int error = got < 0 ? errno : 0;
      ::close(fd);
      if (error != 0) {
        return absl::DataLossError(absl::StrCat("error while reading ", path.string(), ": ", std::strerror(error)));
      }
      return contents;
    }
  }
}

absl::StatusOr<std::vector<std::string>> directory_names(const fs::path& dir) {
  // readdir(3), without std::filesystem's path object per entry.
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot list ", dir.string(), ": ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error = errno;
  ::closedir(stream);
  if (error != 0) return absl::DataLossError(absl::StrCat("cannot list ", dir.string(), ": ", std::strerror(error)));
  return names;
}

namespace {

// Where a file_error keeps its errno.
constexpr char kErrnoPayload[] = "type.pesc/errno";

absl::StatusCode code_of_errno(int error_number) {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return absl::StatusCode::kResourceExhausted;
    case EIO:
      return absl::StatusCode::kDataLoss;
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status file_error(std::string_view action, const fs::path& path, int error_number) {
  return with_errno(absl::Status(code_of_errno(error_number), absl::StrCat("cannot ", std::string(action), " ", path.string(),
                                                                           ": ", std::strerror(error_number))),
                    error_number);
}

absl::Status with_errno(absl::Status status, int error_number) {
  if (error_number != 0 && !status.ok()) status.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(error_number)));
  return status;
}

absl::Status file_error(std::string_view action, const fs::path& path, const std::error_code& error) {
  // std::filesystem reports errno values in the generic and system categories.
  return file_error(action, path, error.value());
}

int errno_of(const absl::Status& status) {
  const auto payload = status.GetPayload(kErrnoPayload);
  int error_number = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &error_number)) return 0;
  return error_number;
}

bool is_disk_fault(const absl::Status& status) {
  const int error_number = errno_of(status);
  return error_number == ENOSPC || error_number == EDQUOT || error_number == EIO;
}

absl::Status write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return file_error("write", path, errno);
    // write(2) returns 0 only for an empty request; a short write is retried
    // for the rest, which then reports the error.
    data.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status close_file(int fd, const fs::path& path) {
  // Linux frees the descriptor even when close fails: never retried.
  if (::close(fd) != 0 && errno != EINTR) return file_error("write", path, errno);
  return absl::OkStatus();
}

absl::Status write_file_atomically(const fs::path& path, std::string_view data, Durability durability) {
  fs::path temporary = path;
  temporary += ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return file_error("write", temporary, errno);
  absl::Status written = write_all(fd, data, temporary);
  if (written.ok() && durability == Durability::kSynced && ::fsync(fd) != 0) {
    written = file_error("write", temporary, errno);
  }
  if (absl::Status closed = close_file(fd, temporary); written.ok()) written = closed;
  if (written.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) written = file_error("rename to", path, errno);
  if (!written.ok()) ::unlink(temporary.c_str());
  return written;
}

absl::StatusOr<uint64_t> free_bytes(const fs::path& path) {
  struct statvfs info;
  if (::statvfs(path.c_str(), &info) != 0) return file_error("measure the free space of", path, errno);
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " bytes");
  if (bytes < (1 << 20)) return absl::StrCat(bytes / 1024, " KiB");
  if (bytes < (uint64_t{1} << 30)) return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / (uint64_t{1} << 30));
}

bool is_executable_file(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string search_path() {
  const char* path = std::getenv("PATH");
  return path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
}

std::optional<std::string> find_on_path(const std::string& program, const std::string& path) {
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty() || dir.front() != '/') continue;
    std::string candidate = absl::StrCat(dir, "/", program);
    if (is_executable_file(candidate)) return candidate;
  }
  return std::nullopt;
}

absl::StatusOr<fs::path> make_temp_directory(std::string_view prefix) {
  std::error_code error;
  fs::path base = fs::temp_directory_path(error);
  if (error) base = "/tmp";
  std::string pattern = (base / absl::StrCat(std::string(prefix), "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a temporary directory in ", base.string(), ": ",
                                            std::strerror(errno)));
  }
  return fs::path(pattern);
}

absl::Status remove_tree(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot remove ", path.string(), ": ", error.message()));
  return absl::OkStatus();
}

absl::StatusOr<TempDirectory> TempDirectory::create(std::string_view prefix) {
  auto path = make_temp_directory(prefix);
  if (!path.ok()) return path.status();
  return TempDirectory(*std::move(path));
}

TempDirectory::TempDirectory(TempDirectory&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDirectory& TempDirectory::operator=(TempDirectory&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) (void)remove_tree(path_);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDirectory::~TempDirectory() {
  if (!path_.empty()) (void)remove_tree(path_);
}

}  // namespace pesc
