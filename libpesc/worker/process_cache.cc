#include "worker/process_cache.h"

#include <system_error>

#include "absl/strings/str_cat.h"
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

absl::Status ProcessCache::fetch(const v1::BlobRef& ref, v1::Blobs::Stub& blobs) {
  if (blobs_->contains(ref.sha256())) return absl::OkStatus();
  // Streamed to disk (and hash-checked) as it arrives: a process or a data
  // file may be larger than memory.
  const fs::path arriving = root_ / "blobs" / "tmp" / ref.sha256();
  PESC_RETURN_IF_ERROR(download_blob(blobs, ref, arriving));
  return blobs_->adopt(arriving, ref.sha256());
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

}  // namespace

absl::StatusOr<fs::path> ProcessCache::materialize(const v1::Assignment& assignment, v1::Blobs::Stub& blobs) {
  const v1::BlobRef& ref = assignment.process();
  const bool one_file = assignment.process_kind() == v1::PROCESS_KIND_FILE;
  // One file is named by its entry, so the same bytes under two names are
  // two cache entries.
  fs::path dir = root_ / "processes" /
                 (one_file ? absl::StrCat(ref.sha256(), "-", sha256_hex(assignment.entry()).substr(0, 12))
                           : ref.sha256());
  absl::MutexLock lock(&mutex_);
  std::error_code error;
  if (fs::is_directory(dir, error)) return dir;
  PESC_RETURN_IF_ERROR(annotate(fetch(ref, blobs), "cannot fetch the process"));
  fs::path staging = dir;
  staging += ".staging";
  (void)remove_tree(staging);
  fs::create_directories(staging, error);
  if (one_file) {
    fs::path file = staging / assignment.entry();
    fs::copy_file(blobs_->path_of(ref.sha256()), file, error);
    if (error) return absl::InternalError(absl::StrCat("cannot place the process: ", error.message()));
    // Read-only and executable: ranks share these bytes through hard links.
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  } else {
    PESC_RETURN_IF_ERROR(archive::extract(blobs_->path_of(ref.sha256()), staging));
    readable_by_all(staging);
  }
  fs::rename(staging, dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot place the process: ", error.message()));
  return dir;
}

absl::StatusOr<fs::path> ProcessCache::shared_file(const v1::SharedFile& shared, v1::Blobs::Stub& blobs) {
  absl::MutexLock lock(&mutex_);
  fs::path file;
  if (shared.has_blob()) {
    PESC_RETURN_IF_ERROR(annotate(fetch(shared.blob(), blobs), absl::StrCat("cannot fetch shared file ", shared.name())));
    file = blobs_->path_of(shared.blob().sha256());
  } else {
    file = root_ / "urls" / sha256_hex(shared.url());
    std::error_code error;
    if (!fs::exists(file, error)) {
      fs::create_directories(file.parent_path(), error);
      PESC_RETURN_IF_ERROR(fetch_url(shared.url(), file));
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
  if (error) return absl::InternalError(absl::StrCat("cannot prepare ", app_dir.string(), ": ", error.message()));
  return absl::OkStatus();
}

}  // namespace pesc
