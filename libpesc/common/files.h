#ifndef PESC_COMMON_FILES_H_
#define PESC_COMMON_FILES_H_

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pesc {

absl::StatusOr<std::string> read_file(const std::filesystem::path& path);

// The names in `dir` (without "." and ".."); NotFound when it cannot be
// listed. A worker lists each rank's output_dir and checkpoint_dir with it.
absl::StatusOr<std::vector<std::string>> directory_names(const std::filesystem::path& dir);

// Writes through a temporary file and a rename, so readers never see half.
absl::Status write_file_atomically(const std::filesystem::path& path, std::string_view data);

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
