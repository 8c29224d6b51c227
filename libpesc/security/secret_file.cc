#include "security/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pesc {

absl::Status write_file_with_mode(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path.string(), ": ", std::strerror(errno)));
  // An existing file keeps its old mode through open(); set it again.
  bool written = ::fchmod(fd, mode) == 0;
  while (written && !data.empty()) {
    ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) continue;
    written = wrote > 0;
    if (written) data.remove_prefix(static_cast<size_t>(wrote));
  }
  written = ::close(fd) == 0 && written;
  return written ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path.string()));
}

}  // namespace pesc
