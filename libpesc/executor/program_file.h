#ifndef PESC_EXECUTOR_PROGRAM_FILE_H_
#define PESC_EXECUTOR_PROGRAM_FILE_H_

// Whether a file can be started as a program: the one rule that the client
// applies to a local native file before uploading it (so the mistake costs
// no job) and a worker applies before starting a rank.

#include <filesystem>

#include "absl/status/status.h"

namespace pesc {

// OK for a regular, executable file that is a compiled program (ELF) or a
// script with a #! line. Otherwise a job fault (common/fault.h) whose
// message says what to change: chmod +x, a #! line, or a domain.
absl::Status check_program_file(const std::filesystem::path& path);

}  // namespace pesc

#endif  // PESC_EXECUTOR_PROGRAM_FILE_H_
