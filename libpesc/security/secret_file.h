#ifndef PESC_SECURITY_SECRET_FILE_H_
#define PESC_SECURITY_SECRET_FILE_H_

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace pesc {

// Writes `data` to `path`, created (or truncated) with `mode` from the
// start, so a token or key is never readable by others, not even briefly.
absl::Status write_file_with_mode(const std::filesystem::path& path, std::string_view data, mode_t mode = 0600);

}  // namespace pesc

#endif  // PESC_SECURITY_SECRET_FILE_H_
