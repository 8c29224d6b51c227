#ifndef PESC_ARCHIVE_ARCHIVE_H_
#define PESC_ARCHIVE_ARCHIVE_H_

// Reading and writing the archives that carry processes and rank outputs,
// through libarchive. Extraction refuses any entry that could land outside
// the destination: absolute paths, `..` components, links (symbolic or hard)
// that point outside, devices and fifos.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pesc::archive {

// Packs the tree under `dir` (regular files, directories, symlinks that stay
// inside `dir`) as an uncompressed POSIX tar with relative, sorted entry
// names, skipping the top-level names in `exclude`. Binary safe.
absl::Status pack_directory(const std::filesystem::path& dir, const std::filesystem::path& archive_file,
                            const std::vector<std::string>& exclude = {});
// A regular file that exists only in memory, packed as if it lay in the tree.
struct MemoryFile {
  std::string name;  // a plain top-level name
  std::string bytes;
};

// The same tar, as bytes, for small trees such as a rank's output_dir, with
// `files` added (each replaces the tree's entry of its name); an empty `dir`
// packs `files` alone. A tar of at most kGzipUpToBytes is gzipped: a few
// small files are mostly a tar's zero padding, which would otherwise travel
// and be stored with every rank's result. ResourceExhausted when the tar
// would exceed `max_bytes`.
inline constexpr size_t kGzipUpToBytes = 16 * 1024;
absl::StatusOr<std::string> pack_directory_in_memory(const std::filesystem::path& dir,
                                                     const std::vector<std::string>& exclude, size_t max_bytes,
                                                     const std::vector<MemoryFile>& files = {});

// The symlinks below `dir` (relative names) that pack_directory would
// refuse: absolute, or leading outside `dir` (through its other links too).
absl::StatusOr<std::vector<std::string>> links_leading_outside(const std::filesystem::path& dir);

// True when `dir` holds nothing but the top-level names in `exclude`.
absl::StatusOr<bool> directory_is_empty_except(const std::filesystem::path& dir,
                                               const std::vector<std::string>& exclude);

// Checks every entry of a tar/tar.gz/zip without extracting it and returns
// the names of its regular files. The error names the offending entry and
// why it is refused; a file that is not an archive is an error too.
absl::StatusOr<std::vector<std::string>> list_files(const std::filesystem::path& archive_file);

// Extracts into `destination` (created if missing), refusing unsafe entries
// before writing them; on error, what was extracted so far stays for the
// caller to remove.
absl::Status extract(const std::filesystem::path& archive_file, const std::filesystem::path& destination);

// The bytes of the regular file `name` (relative, as stored) inside a tar
// (plain or gzipped) or zip held in memory; NotFound when there is none.
// Nothing touches the disk, so reading one small result per rank stays cheap.
absl::StatusOr<std::string> read_member(const std::string& archive_bytes, const std::string& name);

}  // namespace pesc::archive

#endif  // PESC_ARCHIVE_ARCHIVE_H_
