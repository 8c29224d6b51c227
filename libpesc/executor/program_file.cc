#include "executor/program_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fault.h"

namespace pesc {
namespace {

constexpr char kDomainHint[] = "or pass a domain that runs it (--domain python, shell, R, ...)";

// The first bytes of the file: enough for "#!" or ELF's magic.
std::string leading_bytes(const std::filesystem::path& path) {
  char bytes[4] = {};
  ssize_t got = -1;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    got = ::read(fd, bytes, sizeof bytes);
    ::close(fd);
  }
  return got > 0 ? std::string(bytes, static_cast<size_t>(got)) : std::string();
}

}  // namespace

absl::Status check_program_file(const std::filesystem::path& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return job_fault(absl::NotFoundError(absl::StrCat("cannot start ", path.string(), ": ", std::strerror(errno))));
  }
  if (!S_ISREG(info.st_mode)) {
    return job_fault(
        absl::FailedPreconditionError(absl::StrCat("cannot start ", path.string(), ": not a regular file")));
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return job_fault(absl::FailedPreconditionError(
        absl::StrFormat("cannot start %s: it is not executable (mode %04o): chmod +x it, %s", path.string(),
                        info.st_mode & 07777, kDomainHint)));
  }
  const std::string start = leading_bytes(path);
  // Unreadable here does not mean unreadable by the process; exec will tell.
  if (start.empty() && info.st_size > 0) return absl::OkStatus();
  if (start.starts_with("#!") || start == "\x7f" "ELF") return absl::OkStatus();
  return job_fault(absl::FailedPreconditionError(absl::StrCat(
      "cannot start ", path.string(), ": it has no #! line and is not a compiled program: add a line such as "
      "#!/bin/sh at its top, ", kDomainHint)));
}

}  // namespace pesc
