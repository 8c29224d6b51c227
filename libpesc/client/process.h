#ifndef PESC_CLIENT_PROCESS_H_
#define PESC_CLIENT_PROCESS_H_

// Turns what a user names as a process (a file, a directory, a tar or zip
// archive) into the one file that is uploaded and its entry point, refusing
// unsafe archives before anything runs.

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/files.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

struct PreparedProcess {
  v1::ProcessKind kind = v1::PROCESS_KIND_UNSPECIFIED;
  std::filesystem::path upload;  // the file to upload
  std::string entry;
  std::optional<TempDirectory> scratch;  // holds a packed directory
};

bool looks_like_archive(const std::filesystem::path& path);

absl::StatusOr<PreparedProcess> prepare_process(const std::filesystem::path& process, const std::string& entry);

}  // namespace pesc

#endif  // PESC_CLIENT_PROCESS_H_
