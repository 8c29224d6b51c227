#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

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

absl::Status write_file_atomically(const fs::path& path, std::string_view data) {
  fs::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", temporary.string(), ": ", std::strerror(errno)));
    }
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out.flush()) return absl::DataLossError(absl::StrCat("short write to ", temporary.string()));
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot rename to ", path.string(), ": ", error.message()));
  return absl::OkStatus();
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
