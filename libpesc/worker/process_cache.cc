#include "worker/process_cache.h"

#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "archive/archive.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "transport/transport.h"
#include "transport/url_fetch.h"

namespace pesc {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<ProcessCache>> ProcessCache::open(const fs::path& root) {
  PESC_ASSIGN_OR_RETURN(auto blobs, BlobStore::open(root / "blobs"));
  std::error_code error;
  fs::create_directories(root / "processes", error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", (root / "processes").string()));
  return std::unique_ptr<ProcessCache>(new ProcessCache(root, std::move(blobs)));
}

absl::Status ProcessCache::fetch(const BlobId& blob, BlobSource& blobs) {
  // Its size, checked on each use, catches a copy cut short since.
  if (auto size = blobs_->size_of(blob.sha256); size.ok() && *size == blob.size) return absl::OkStatus();
  // Streamed to disk (and hash-checked) as it arrives: a process or a data
  // file may be larger than memory.
  const fs::path arriving = root_ / "blobs" / "tmp" / blob.sha256;
  // Kept across restarts: on disk before it is named.
  PESC_RETURN_IF_ERROR(blobs.download(blob, arriving, Durability::kSynced));
  return blobs_->adopt(arriving, blob.sha256);
}

namespace {

// Ranks may run as another user than the worker's: they must read (and run)
// what the archive holds, though its owner may have kept it private.
void readable_by_all(const fs::path& dir) {
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::end(it); it.increment(error)) {
    if (it->is_symlink(error)) continue;
    const fs::perms mode = it->status(error).permissions();
    fs::perms added = fs::perms::group_read | fs::perms::others_read;
    if ((mode & fs::perms::owner_exec) != fs::perms::none) added |= fs::perms::group_exec | fs::perms::others_exec;
    fs::permissions(it->path(), added, fs::perm_options::add, error);
  }
}

fs::path manifest_of(const fs::path& dir) {
  fs::path manifest = dir;
  manifest += ".manifest";
  return manifest;
}

// "size<TAB>relative path<NUL>" for every regular file under `dir`.
absl::StatusOr<std::string> manifest_for(const fs::path& dir) {
  std::string manifest;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::end(it); it.increment(error)) {
    if (it->is_symlink(error) || !it->is_regular_file(error)) continue;
    const uintmax_t size = it->file_size(error);
    if (error) break;
    absl::StrAppend(&manifest, size, "\t", fs::relative(it->path(), dir).string(), absl::string_view("\0", 1));
  }
  if (error) return file_error("list", dir, error);
  return manifest;
}

// The entry as its manifest says it was staged; false without a manifest.
bool intact(const fs::path& dir) {
  absl::StatusOr<std::string> manifest = read_file(manifest_of(dir));
  std::error_code error;
  if (!manifest.ok() || !fs::is_directory(dir, error)) return false;
  for (absl::string_view line : absl::StrSplit(*manifest, '\0', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits('\t', 1));
    uintmax_t size = 0;
    const fs::path file = dir / fs::path(std::string(fields.second));
    if (!absl::SimpleAtoi(fields.first, &size) || !fs::is_regular_file(fs::symlink_status(file, error)) ||
        fs::file_size(file, error) != size || error) {
      return false;
    }
  }
  return true;
}

// Removes an entry: its manifest first, so a half-removed one never counts.
absl::Status discard(const fs::path& dir) {
  std::error_code error;
  fs::remove(manifest_of(dir), error);
  if (error) return file_error("remove", manifest_of(dir), error);
  return remove_tree(dir);
}

}  // namespace

absl::Status ProcessCache::stage(const JobRun& job, const fs::path& staging) {
  const fs::path blob = blobs_->path_of(job.process.sha256);
  std::error_code error;
  fs::create_directories(staging, error);
  if (error) return file_error("create", staging, error);
  if (job.archive) {
    PESC_RETURN_IF_ERROR(archive::extract(blob, staging));
    readable_by_all(staging);
    return absl::OkStatus();
  }
  const fs::path file = staging / job.entry;
  fs::copy_file(blob, file, error);
  if (error) return file_error("place the process at", file, error);
  if (fs::file_size(file, error) != job.process.size || error) {
    return absl::DataLossError(absl::StrCat("cannot place the process at ", file.string(), ": it came out short"));
  }
  // Read-only and executable: ranks share these bytes through hard links.
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec,
                  error);
  if (error) return file_error("make executable", file, error);
  return absl::OkStatus();
}

absl::StatusOr<fs::path> ProcessCache::materialize(const JobRun& job, BlobSource& blobs) {
  const std::string& sha256 = job.process.sha256;
  // One file is named by its entry, so the same bytes under two names are
  // two cache entries.
  fs::path dir = root_ / "processes" /
                 (job.archive ? sha256 : absl::StrCat(sha256, "-", sha256_hex(job.entry).substr(0, 12)));
  absl::MutexLock lock(&mutex_);
  if (intact(dir)) return dir;
  PESC_RETURN_IF_ERROR(discard(dir));
  PESC_RETURN_IF_ERROR(annotate(fetch(job.process, blobs), "cannot fetch the process"));
  fs::path staging = dir;
  staging += ".staging";
  (void)remove_tree(staging);
  absl::Status staged = stage(job, staging);
  absl::StatusOr<std::string> manifest = staged.ok() ? manifest_for(staging) : staged;
  if (!manifest.ok()) {
    (void)remove_tree(staging);
    return manifest.status();
  }
  std::error_code error;
  fs::rename(staging, dir, error);
  if (error) return file_error("place the process at", dir, error);
  // Last: the manifest is what makes the entry count.
  if (absl::Status written = write_file_atomically(manifest_of(dir), *manifest, Durability::kSynced); !written.ok()) {
    (void)discard(dir);
    return written;
  }
  return dir;
}

absl::StatusOr<fs::path> ProcessCache::shared_file(const SharedInput& shared, BlobSource& blobs) {
  absl::MutexLock lock(&mutex_);
  fs::path file;
  if (shared.url.empty()) {
    PESC_RETURN_IF_ERROR(annotate(fetch(shared.blob, blobs), absl::StrCat("cannot fetch shared file ", shared.name)));
    file = blobs_->path_of(shared.blob.sha256);
  } else {
    file = root_ / "urls" / sha256_hex(shared.url);
    std::error_code error;
    if (!fs::exists(file, error)) {
      fs::create_directories(file.parent_path(), error);
      PESC_RETURN_IF_ERROR(fetch_url(shared.url, file));
    }
  }
  std::error_code error;
  fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, error);
  return file;
}

absl::Status ProcessCache::populate(const fs::path& process_dir, const fs::path& app_dir) {
  std::error_code error;
  fs::create_directories(app_dir, error);
  for (auto it = fs::recursive_directory_iterator(process_dir, error); !error && it != fs::end(it);
       it.increment(error)) {
    // Lexically: fs::relative resolves links, and would name a link by the
    // file it points to (`ok -> main.sh` placed as a link main.sh -> main.sh).
    fs::path target = app_dir / it->path().lexically_relative(process_dir);
    if (it->is_symlink()) {
      fs::copy_symlink(it->path(), target, error);
    } else if (it->is_directory()) {
      fs::create_directories(target, error);
    } else {
      fs::create_hard_link(it->path(), target, error);
      if (error) {
        error.clear();
        fs::copy_file(it->path(), target, error);
      }
    }
    if (error) break;
  }
  if (error) return file_error("prepare", app_dir, error);
  return absl::OkStatus();
}

}  // namespace pesc
