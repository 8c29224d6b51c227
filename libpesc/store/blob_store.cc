#include "store/blob_store.h"

#include <atomic>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/files.h"

namespace pesc {
namespace fs = std::filesystem;

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::open(const fs::path& root, Access access) {
  std::error_code error;
  fs::create_directories(root / "tmp", error);
  if (!error && access == Access::kOwnerOnly) fs::permissions(root, fs::perms::owner_all, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create blob store ", root.string(), ": ", error.message()));
  return std::unique_ptr<BlobStore>(new BlobStore(root, access));
}

fs::path BlobStore::path_of(std::string_view sha256) const {
  return root_ / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

bool BlobStore::contains(std::string_view sha256) const {
  if (!is_sha256_hex(sha256)) return false;
  std::error_code error;
  return fs::is_regular_file(path_of(sha256), error);
}

absl::StatusOr<uint64_t> BlobStore::size_of(std::string_view sha256) const {
  std::error_code error;
  uint64_t size = fs::file_size(path_of(sha256), error);
  if (error) return absl::NotFoundError(absl::StrCat("no blob ", std::string(sha256)));
  return size;
}

absl::StatusOr<std::unique_ptr<BlobStore::Writer>> BlobStore::begin_write() const {
  fs::path temporary = root_ / "tmp" / random_hex(12);
  auto writer = std::unique_ptr<Writer>(new Writer(this, temporary));
  if (!writer->out_) return absl::InternalError(absl::StrCat("cannot create ", temporary.string()));
  if (access_ == Access::kOwnerOnly) {
    std::error_code error;
    fs::permissions(temporary, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, error);
    if (error) return absl::InternalError(absl::StrCat("cannot make ", temporary.string(), " private: ", error.message()));
  }
  return writer;
}

BlobStore::Writer::Writer(const BlobStore* store, fs::path temporary)
    : store_(store), temporary_(std::move(temporary)), out_(temporary_, std::ios::binary | std::ios::trunc) {}

BlobStore::Writer::~Writer() {
  if (!committed_) {
    out_.close();
    std::error_code ignored;
    fs::remove(temporary_, ignored);
  }
}

absl::Status BlobStore::Writer::append(std::string_view bytes) {
  hash_.update(bytes);
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out_) return absl::ResourceExhaustedError(absl::StrCat("cannot write ", temporary_.string()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobStore::Writer::commit(std::string_view expected_sha256) {
  out_.close();
  if (!out_) return absl::ResourceExhaustedError(absl::StrCat("cannot write ", temporary_.string()));
  std::string actual = hash_.finish_hex();
  if (!expected_sha256.empty() && actual != expected_sha256) {
    return absl::DataLossError(
        absl::StrCat("blob content hashes to ", actual, " but was sent as ", std::string(expected_sha256)));
  }
  fs::path final_path = store_->path_of(actual);
  std::error_code error;
  fs::create_directories(final_path.parent_path(), error);
  fs::rename(temporary_, final_path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot store blob ", actual, ": ", error.message()));
  committed_ = true;
  return actual;
}

absl::Status BlobStore::adopt(const fs::path& file, std::string_view sha256) const {
  std::error_code error;
  absl::StatusOr<std::string> on_disk = sha256_file_hex(file);
  if (!on_disk.ok() || *on_disk != sha256) {
    fs::remove(file, error);
    if (!on_disk.ok()) return on_disk.status();
    return absl::DataLossError(absl::StrCat(file.string(), " holds blob ", *on_disk, " where blob ",
                                            std::string(sha256), " was written"));
  }
  const fs::path final_path = path_of(sha256);
  fs::create_directories(final_path.parent_path(), error);
  if (error) return file_error("create", final_path.parent_path(), error);
  fs::rename(file, final_path, error);
  if (error) return file_error("store blob at", final_path, error);
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobStore::put_file(const fs::path& file) const {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file.string()));
  auto writer = begin_write();
  if (!writer.ok()) return writer.status();
  std::string buffer(1 << 16, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (auto status = (*writer)->append(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
        !status.ok()) {
      return status;
    }
  }
  return (*writer)->commit();
}

absl::StatusOr<std::string> BlobStore::put_bytes(std::string_view bytes) const {
  auto writer = begin_write();
  if (!writer.ok()) return writer.status();
  if (auto status = (*writer)->append(bytes); !status.ok()) return status;
  return (*writer)->commit();
}

}  // namespace pesc
