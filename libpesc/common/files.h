#ifndef PESC_COMMON_FILES_H_
#define PESC_COMMON_FILES_H_

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pesc {

absl::StatusOr<std::string> read_file(const std::filesystem::path& path);

// The names in `dir` (without "." and ".."); NotFound when it cannot be
// listed. A worker lists each rank's output_dir and checkpoint_dir with it.
absl::StatusOr<std::vector<std::string>> directory_names(const std::filesystem::path& dir);

// A failed system call on `path` ("cannot write /x: No space left on
// device"), carrying its errno so that callers can tell a full or failing
// disk from a refusal (is_disk_fault). ENOSPC and EDQUOT are
// ResourceExhausted, EIO DataLoss.
absl::Status file_error(std::string_view action, const std::filesystem::path& path, int error_number);
absl::Status file_error(std::string_view action, const std::filesystem::path& path, const std::error_code& error);
// `status` with `error_number` attached as a file_error's (0: unchanged).
absl::Status with_errno(absl::Status status, int error_number);
// The errno a file_error carries (kept through transport's annotate); 0 when none.
int errno_of(const absl::Status& status);
// The disk failed the write (ENOSPC, EDQUOT, EIO): the machine's fault, not
// the job's.
bool is_disk_fault(const absl::Status& status);

// Writes all of `data` to `fd`, which is `path` open for writing.
absl::Status write_all(int fd, std::string_view data, const std::filesystem::path& path);
// Closes `fd`: its error is a write's error too (NFS, quotas report there).
absl::Status close_file(int fd, const std::filesystem::path& path);

enum class Durability {
  kVisible,  // readers see all or nothing; a crash may lose the file
  kSynced,   // on disk (fsync) before the rename makes it visible
};
// Writes through a temporary file and a rename, so readers never see half;
// every write, the close and the rename are checked.
absl::Status write_file_atomically(const std::filesystem::path& path, std::string_view data,
                                   Durability durability = Durability::kVisible);

// Bytes an unprivileged user can still write on the filesystem of `path`.
absl::StatusOr<uint64_t> free_bytes(const std::filesystem::path& path);
// "12 KiB", "3.5 MiB": a size for people.
std::string format_bytes(uint64_t bytes);

// A regular file this process may execute.
bool is_executable_file(const std::string& path);
// $PATH, or the usual system dirs when it is unset.
std::string search_path();
// Where `program` is on `path` (a $PATH-like list); relative entries, which
// would depend on the cwd, are skipped.
std::optional<std::string> find_on_path(const std::string& program, const std::string& path = search_path());

// Creates a fresh directory under the system temporary directory.
absl::StatusOr<std::filesystem::path> make_temp_directory(std::string_view prefix);

// Removes a tree, reporting (not throwing) what could not be removed.
absl::Status remove_tree(const std::filesystem::path& path);

// A directory removed with everything in it when this object goes away.
class TempDirectory {
 public:
  static absl::StatusOr<TempDirectory> create(std::string_view prefix);
  TempDirectory(TempDirectory&& other) noexcept;
  TempDirectory& operator=(TempDirectory&& other) noexcept;
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  ~TempDirectory();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDirectory(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace pesc

#endif  // PESC_COMMON_FILES_H_
