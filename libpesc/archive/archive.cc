#include "archive/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/fault.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace pesc::archive {
namespace {

namespace fs = std::filesystem;

// Linux gives up on a path after this many symlinks (MAXSYMLINKS); so does
// the check, which also stops link loops.
constexpr int kMaxSymlinkHops = 40;
constexpr size_t kReadBlockSize = 64 * 1024;

struct ReadDeleter {
  void operator()(struct archive* reader) const { archive_read_free(reader); }
};
struct WriteDeleter {
  void operator()(struct archive* writer) const { archive_write_free(writer); }
};
struct EntryDeleter {
  void operator()(struct archive_entry* entry) const { archive_entry_free(entry); }
};
using Reader = std::unique_ptr<struct archive, ReadDeleter>;
using Writer = std::unique_ptr<struct archive, WriteDeleter>;
using Entry = std::unique_ptr<struct archive_entry, EntryDeleter>;

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// libarchive converts names between UTF-8 (pax headers, zip's UTF-8 flag)
// and the thread's locale, and under a C locale drops the names it cannot
// convert. Linux names are bytes, by convention UTF-8, so every libarchive
// call runs under a UTF-8 LC_CTYPE for this thread alone (uselocale), which
// keeps names intact whatever locale the embedding process chose.
class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale() {
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (utf8 != static_cast<locale_t>(nullptr)) previous_ = uselocale(utf8);
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;
  ~ScopedUtf8Locale() {
    if (previous_ != static_cast<locale_t>(nullptr)) uselocale(previous_);
  }

 private:
  locale_t previous_ = static_cast<locale_t>(nullptr);
};

enum class Kind { kFile, kDirectory, kSymlink, kHardlink };

std::string quote(absl::string_view name) { return absl::StrCat("\"", absl::Utf8SafeCHexEscape(name), "\""); }

std::string error_text(struct archive* handle) {
  const char* text = archive_error_string(handle);
  return text != nullptr ? text : "unknown error";
}

// `message` and libarchive's own words, with the errno behind them, so a
// full disk is told from a bad archive.
absl::Status archive_failure(absl::StatusCode code, struct archive* handle, absl::string_view message) {
  return with_errno(absl::Status(code, absl::StrCat(message, ": ", error_text(handle))), archive_errno(handle));
}

// ARCHIVE_RETRY ranks above ARCHIVE_WARN numerically but means the call did
// not succeed, so results are compared to the two good values explicitly.
bool succeeded(la_int64_t result) { return result == ARCHIVE_OK || result == ARCHIVE_WARN; }

std::vector<std::string> split_path(absl::string_view path) {
  return absl::StrSplit(path, '/', absl::SkipEmpty());
}

absl::string_view parent_of(absl::string_view name) {
  size_t slash = name.rfind('/');
  return slash == absl::string_view::npos ? absl::string_view() : name.substr(0, slash);
}

// Entry names are compared in one spelling: relative, no empty or `.`
// components. The root itself normalises to "".
absl::StatusOr<std::string> normalize_name(absl::string_view raw) {
  if (raw.empty()) return absl::InvalidArgumentError("its name is empty");
  if (raw.front() == '/') return absl::InvalidArgumentError("its path is absolute");
  std::vector<absl::string_view> kept;
  for (absl::string_view part : absl::StrSplit(raw, '/', absl::SkipEmpty())) {
    if (part == "..") return absl::InvalidArgumentError("its path has a \"..\" component");
    if (part != ".") kept.push_back(part);
  }
  return absl::StrJoin(kept, "/");
}

struct CheckedEntry {
  std::string name;  // normalised; "" for the root
  std::string link;  // a symlink's target as stored, a hard link's normalised
};

// Decides, entry by entry, whether an archive could place anything outside
// its root once extracted. Symlink targets are resolved against the other
// symlinks of the same archive, because `r -> .` plus `a/b/l -> ../../r/..`
// escapes although each target alone looks harmless. finish() repeats the
// symlink checks against the complete set, since a later entry can change
// where an earlier link leads.
class EntryChecker {
 public:
  explicit EntryChecker(std::string context) : context_(std::move(context)) {}

  absl::StatusOr<CheckedEntry> add(absl::string_view raw_name, Kind kind, absl::string_view link) {
    auto name = normalize_name(raw_name);
    if (!name.ok()) return refuse(raw_name, name.status().message());
    CheckedEntry checked{*std::move(name), ""};
    if (checked.name.empty()) {
      if (kind != Kind::kDirectory) return refuse(raw_name, "it names the root but is not a directory");
      return checked;
    }
    PESC_RETURN_IF_ERROR(check_ancestors(checked.name));
    if (kind == Kind::kSymlink) {
      PESC_RETURN_IF_ERROR(add_symlink(checked.name, link));
      checked.link = std::string(link);
    }
    if (kind == Kind::kHardlink) {
      PESC_ASSIGN_OR_RETURN(checked.link, check_hardlink(checked.name, link));
    }
    // A later entry of the same name replaces the earlier one on disk.
    if (kind != Kind::kSymlink) symlinks_.erase(checked.name);
    if (kind == Kind::kFile || kind == Kind::kHardlink) {
      regular_files_.insert(checked.name);
    } else {
      regular_files_.erase(checked.name);
    }
    names_.push_back(checked.name);
    return checked;
  }

  // Of `links` (name -> target, all in one tree), those that lead outside
  // the tree's root, are absolute or empty, or loop: what add() refuses.
  static std::vector<std::string> escaping(std::map<std::string, std::string> links) {
    EntryChecker checker("");
    checker.symlinks_ = std::move(links);
    std::vector<std::string> escaping;
    for (const auto& [name, target] : checker.symlinks_) {
      if (target.empty() || target.front() == '/' || checker.symlink_problem(name, target)) escaping.push_back(name);
    }
    return escaping;
  }

  absl::Status finish() const {
    for (const std::string& name : names_) PESC_RETURN_IF_ERROR(check_ancestors(name));
    for (const auto& [name, target] : symlinks_) PESC_RETURN_IF_ERROR(check_symlink(name, target));
    return absl::OkStatus();
  }

 private:
  // What an archive holds is the job's to change.
  absl::Status refuse(absl::string_view name, absl::string_view reason) const {
    return job_fault(
        absl::InvalidArgumentError(absl::StrCat(context_, ": refusing entry ", quote(name), ": ", reason)));
  }

  // Writing below a symlink would land wherever the link points.
  absl::Status check_ancestors(absl::string_view name) const {
    for (size_t slash = name.find('/'); slash != absl::string_view::npos; slash = name.find('/', slash + 1)) {
      std::string ancestor(name.substr(0, slash));
      if (symlinks_.count(ancestor) > 0) {
        return refuse(name, absl::StrCat("it lies below the symlink ", quote(ancestor)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status add_symlink(const std::string& name, absl::string_view target) {
    if (target.empty()) return refuse(name, "it is a symlink with an empty target");
    if (target.front() == '/') return refuse(name, absl::StrCat("it is a symlink to the absolute path ", quote(target)));
    symlinks_[name] = std::string(target);
    return check_symlink(name, target);
  }

  absl::StatusOr<std::string> check_hardlink(absl::string_view name, absl::string_view raw_target) const {
    auto target = normalize_name(raw_target);
    if (!target.ok()) {
      return refuse(name, absl::StrCat("it is a hard link to ", quote(raw_target), " (", target.status().message(), ")"));
    }
    // Only an earlier regular file of this archive is known to be inside;
    // anything else could be a file the archive does not own.
    if (regular_files_.count(*target) == 0) {
      return refuse(name, absl::StrCat("it is a hard link to ", quote(raw_target),
                                       ", which is not a regular file earlier in the archive"));
    }
    return target;
  }

  // Resolves `target` as the kernel would, from the directory holding
  // `link_name`, following the archive's own symlinks; says what is wrong
  // when the walk climbs above the root, reaches an absolute link or loops.
  std::optional<std::string> symlink_problem(absl::string_view link_name, absl::string_view target) const {
    std::vector<std::string> position = split_path(parent_of(link_name));
    std::vector<std::string> first = split_path(target);
    std::deque<std::string> pending(first.begin(), first.end());
    int hops = 0;
    while (!pending.empty()) {
      std::string part = std::move(pending.front());
      pending.pop_front();
      if (part == ".") continue;
      if (part == "..") {
        if (position.empty()) return "leads outside the archive root";
        position.pop_back();
        continue;
      }
      position.push_back(std::move(part));
      auto link = symlinks_.find(absl::StrJoin(position, "/"));
      if (link == symlinks_.end()) continue;
      if (++hops > kMaxSymlinkHops) return "loops through symlinks";
      if (absl::StartsWith(link->second, "/")) return "leads to an absolute symlink";
      position.pop_back();
      std::vector<std::string> parts = split_path(link->second);
      pending.insert(pending.begin(), parts.begin(), parts.end());
    }
    return std::nullopt;
  }

  absl::Status check_symlink(absl::string_view name, absl::string_view target) const {
    std::optional<std::string> problem = symlink_problem(name, target);
    if (!problem.has_value()) return absl::OkStatus();
    return refuse(name, absl::StrCat("it is a symlink to ", quote(target), ", which ", *problem));
  }

  std::string context_;
  std::map<std::string, std::string> symlinks_;
  std::set<std::string> regular_files_;
  std::vector<std::string> names_;
};

// ---------------------------------------------------------------- packing

struct PackItem {
  std::string name;  // relative, '/'-separated
  fs::path path;
  struct stat info;
  const std::string* bytes = nullptr;  // a MemoryFile's: no path to read
};

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

bool is_excluded(absl::string_view top_level, const std::vector<std::string>& exclude) {
  return std::find(exclude.begin(), exclude.end(), top_level) != exclude.end();
}

// Lists the tree below `dir` (without following symlinks), sorted by name.
// `skip` is the archive being written, in case it lives inside `dir`.
absl::StatusOr<std::vector<PackItem>> collect_tree(const fs::path& dir, const std::vector<std::string>& exclude,
                                                   const struct stat& skip, const std::string& context) {
  std::vector<PackItem> items;
  std::error_code error;
  fs::recursive_directory_iterator it(dir, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const fs::path& path = it->path();
    if (it.depth() == 0 && is_excluded(path.filename().string(), exclude)) {
      it.disable_recursion_pending();
      continue;
    }
    PackItem item{path.lexically_relative(dir).generic_string(), path, {}};
    if (::lstat(path.c_str(), &item.info) != 0) {
      return absl::InternalError(absl::StrCat(context, ": cannot stat ", path.string(), ": ", std::strerror(errno)));
    }
    if (same_file(item.info, skip)) continue;
    items.push_back(std::move(item));
  }
  if (error) return absl::InternalError(absl::StrCat(context, ": cannot list ", dir.string(), ": ", error.message()));
  std::sort(items.begin(), items.end(), [](const PackItem& a, const PackItem& b) { return a.name < b.name; });
  return items;
}

absl::StatusOr<Kind> pack_kind(const PackItem& item, const std::string& context) {
  if (S_ISREG(item.info.st_mode)) return Kind::kFile;
  if (S_ISDIR(item.info.st_mode)) return Kind::kDirectory;
  if (S_ISLNK(item.info.st_mode)) return Kind::kSymlink;
  return absl::InvalidArgumentError(
      absl::StrCat(context, ": ", quote(item.name), " is neither a regular file, a directory nor a symlink"));
}

absl::Status write_header(struct archive* writer, struct archive_entry* entry, const PackItem& item,
                          const std::string& context) {
  if (!succeeded(archive_write_header(writer, entry))) {
    return archive_failure(absl::StatusCode::kInternal, writer,
                           absl::StrCat(context, ": cannot write the header of ", quote(item.name)));
  }
  return absl::OkStatus();
}

// Reads through a descriptor opened without following links, so the bytes
// written are those of the file that was checked, and the size in the header
// is the size of the bytes that follow it.
absl::Status write_file(struct archive* writer, struct archive_entry* entry, const PackItem& item,
                        const std::string& context) {
  FileDescriptor fd(::open(item.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat info;
  if (fd.get() < 0 || ::fstat(fd.get(), &info) != 0) {
    return absl::InternalError(absl::StrCat(context, ": cannot read ", item.path.string(), ": ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode) || !same_file(info, item.info)) {
    return absl::AbortedError(absl::StrCat(context, ": ", item.path.string(), " changed while being packed"));
  }
  archive_entry_set_size(entry, info.st_size);
  PESC_RETURN_IF_ERROR(write_header(writer, entry, item, context));
  std::array<char, kReadBlockSize> buffer;
  off_t remaining = info.st_size;
  while (remaining > 0) {
    ssize_t got = ::read(fd.get(), buffer.data(), static_cast<size_t>(std::min<off_t>(remaining, buffer.size())));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return absl::InternalError(
          absl::StrCat(context, ": cannot read ", item.path.string(), ": ", std::strerror(errno)));
    }
    if (got == 0) return absl::AbortedError(absl::StrCat(context, ": ", item.path.string(), " shrank while being packed"));
    if (archive_write_data(writer, buffer.data(), static_cast<size_t>(got)) != got) {
      return archive_failure(absl::StatusCode::kInternal, writer, absl::StrCat(context, ": cannot write ", quote(item.name)));
    }
    remaining -= got;
  }
  return absl::OkStatus();
}

absl::Status write_bytes(struct archive* writer, struct archive_entry* entry, const PackItem& item,
                         const std::string& context) {
  archive_entry_set_size(entry, static_cast<la_int64_t>(item.bytes->size()));
  PESC_RETURN_IF_ERROR(write_header(writer, entry, item, context));
  if (!item.bytes->empty() &&
      archive_write_data(writer, item.bytes->data(), item.bytes->size()) != static_cast<la_ssize_t>(item.bytes->size())) {
    return archive_failure(absl::StatusCode::kInternal, writer, absl::StrCat(context, ": cannot write ", quote(item.name)));
  }
  return absl::OkStatus();
}

absl::Status write_item(struct archive* writer, const PackItem& item, Kind kind, const std::string& context) {
  Entry entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), item.name.c_str());
  archive_entry_set_mtime(entry.get(), item.info.st_mtime, 0);
  // Ownership is left at 0/0 with no names: it is not restored on the other
  // side, and the archive stays the same whoever packs it.
  archive_entry_set_perm(entry.get(), item.info.st_mode & 0777);
  switch (kind) {
    case Kind::kDirectory:
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
      return write_header(writer, entry.get(), item, context);
    case Kind::kSymlink: {
      std::error_code error;
      fs::path target = fs::read_symlink(item.path, error);
      if (error) {
        return absl::InternalError(absl::StrCat(context, ": cannot read the symlink ", item.path.string(), ": ",
                                                error.message()));
      }
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), target.c_str());
      return write_header(writer, entry.get(), item, context);
    }
    case Kind::kFile:
    case Kind::kHardlink:
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      if (item.bytes != nullptr) return write_bytes(writer, entry.get(), item, context);
      return write_file(writer, entry.get(), item, context);
  }
  return absl::InternalError("unreachable");
}

// Writes the listed tree into an archive opened on `writer`.
absl::Status write_tree(struct archive* writer, const std::vector<PackItem>& items, const std::string& context) {
  // Check the whole tree first, exactly as a reader of the archive will.
  EntryChecker checker(context);
  std::vector<Kind> kinds;
  kinds.reserve(items.size());
  for (const PackItem& item : items) {
    PESC_ASSIGN_OR_RETURN(Kind kind, pack_kind(item, context));
    std::string target;
    if (kind == Kind::kSymlink) {
      std::error_code error;
      target = fs::read_symlink(item.path, error).string();
    }
    PESC_RETURN_IF_ERROR(checker.add(item.name, kind, target).status());
    kinds.push_back(kind);
  }
  PESC_RETURN_IF_ERROR(checker.finish());

  for (size_t i = 0; i < items.size(); ++i) PESC_RETURN_IF_ERROR(write_item(writer, items[i], kinds[i], context));
  if (archive_write_close(writer) != ARCHIVE_OK) {
    return archive_failure(absl::StatusCode::kInternal, writer, absl::StrCat(context, ": cannot finish the archive"));
  }
  return absl::OkStatus();
}

bool set_tar_format(struct archive* writer) {
  return archive_write_set_format_pax_restricted(writer) == ARCHIVE_OK &&
         archive_write_add_filter_none(writer) == ARCHIVE_OK;
}

absl::Status write_tar(const fs::path& dir, const fs::path& archive_file, const std::vector<std::string>& exclude,
                       const std::string& context) {
  // Opened here rather than by libarchive, which does not check the close.
  FileDescriptor fd(::open(archive_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return file_error("create", archive_file, errno);
  Writer writer(archive_write_new());
  if (!set_tar_format(writer.get()) || archive_write_open_fd(writer.get(), fd.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(context, ": cannot create the archive: ", error_text(writer.get())));
  }
  struct stat archive_info;
  if (::fstat(fd.get(), &archive_info) != 0) {
    return absl::InternalError(absl::StrCat(context, ": cannot stat the archive: ", std::strerror(errno)));
  }
  // The archive's own file may lie in the tree; it is never packed into itself.
  PESC_ASSIGN_OR_RETURN(std::vector<PackItem> items, collect_tree(dir, exclude, archive_info, context));
  PESC_RETURN_IF_ERROR(write_tree(writer.get(), items, context));
  return close_file(fd.release(), archive_file);
}

struct BoundedBytes {
  std::string bytes;
  size_t max = 0;
  bool overflowed = false;
};

la_ssize_t append_bounded(struct archive* writer, void* sink, const void* data, size_t size) {
  auto& out = *static_cast<BoundedBytes*>(sink);
  if (out.bytes.size() + size > out.max) {
    out.overflowed = true;
    archive_set_error(writer, EFBIG, "larger than %zu bytes", out.max);
    return -1;
  }
  out.bytes.append(static_cast<const char*>(data), size);
  return static_cast<la_ssize_t>(size);
}

// A gzip stream of `data` at the fastest level, with a window and hash
// sized to it: zlib's default state is 256 KiB, zeroed, which would cost a
// small tar more than its padding costs to send.
absl::StatusOr<std::string> gzip(std::string_view data) {
  int window_bits = 9;  // zlib's smallest for gzip
  while (window_bits < 15 && (size_t{1} << window_bits) < data.size()) ++window_bits;
  z_stream stream = {};
  constexpr int kGzipWrapper = 16;
  if (deflateInit2(&stream, 1, Z_DEFLATED, window_bits + kGzipWrapper, std::clamp(window_bits - 8, 1, 8),
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("cannot start gzip");
  }
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int finished = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (finished != Z_STREAM_END) return absl::InternalError("cannot gzip the archive");
  return out;
}

// ---------------------------------------------------------------- reading

absl::Status unreadable(const fs::path& archive_file, struct archive* reader) {
  return absl::InvalidArgumentError(
      absl::StrCat(archive_file.string(), " is not a readable tar or zip archive: ", error_text(reader)));
}

absl::StatusOr<Kind> entry_kind(struct archive_entry* entry) {
  if (archive_entry_hardlink(entry) != nullptr) return Kind::kHardlink;
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
      return Kind::kFile;
    case AE_IFDIR:
      return Kind::kDirectory;
    case AE_IFLNK:
      return Kind::kSymlink;
    case AE_IFCHR:
    case AE_IFBLK:
      return absl::InvalidArgumentError("it is a device");
    case AE_IFIFO:
      return absl::InvalidArgumentError("it is a fifo");
    case AE_IFSOCK:
      return absl::InvalidArgumentError("it is a socket");
    default:
      return absl::InvalidArgumentError("it has an unknown file type");
  }
}

// Names come as UTF-8 when libarchive can give them so, otherwise as the raw
// bytes stored (a name that is not UTF-8). The disk writer is then handed
// these very bytes.
const char* entry_text(const char* (*utf8)(struct archive_entry*), const char* (*native)(struct archive_entry*),
                       struct archive_entry* entry) {
  const char* text = utf8(entry);
  return text != nullptr ? text : native(entry);
}

using EntryVisitor =
    std::function<absl::Status(struct archive* reader, struct archive_entry* entry, const CheckedEntry& checked, Kind kind)>;

// Only tar and zip: format_all would also take mtree, whose entries name
// files on the local disk for libarchive to read.
absl::StatusOr<Reader> open_reader(const fs::path& archive_file) {
  std::error_code error;
  if (!fs::is_regular_file(archive_file, error)) {
    return absl::NotFoundError(absl::StrCat("archive ", archive_file.string(), " does not exist or is not a file"));
  }
  Reader reader(archive_read_new());
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_filename(reader.get(), archive_file.c_str(), kReadBlockSize) != ARCHIVE_OK) {
    return unreadable(archive_file, reader.get());
  }
  return reader;
}

// Calls `visit` on every entry after it passed the checks; the visitor must
// consume or skip the entry's data. Corruption anywhere fails the whole walk.
absl::Status for_each_entry(const fs::path& archive_file, const EntryVisitor& visit) {
  PESC_ASSIGN_OR_RETURN(Reader reader, open_reader(archive_file));
  EntryChecker checker(archive_file.string());
  struct archive_entry* entry = nullptr;
  while (true) {
    int result = archive_read_next_header(reader.get(), &entry);
    if (result == ARCHIVE_EOF) break;
    // ARCHIVE_WARN covers recoverable oddities such as a name that could not
    // be converted to the locale; the name checks below still apply.
    if (!succeeded(result)) return unreadable(archive_file, reader.get());
    const char* raw_name = entry_text(archive_entry_pathname_utf8, archive_entry_pathname, entry);
    if (raw_name == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(archive_file.string(), ": refusing an entry whose name cannot be read"));
    }
    auto kind = entry_kind(entry);
    if (!kind.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(archive_file.string(), ": refusing entry ", quote(raw_name), ": ", kind.status().message()));
    }
    const char* link = *kind == Kind::kHardlink
                           ? entry_text(archive_entry_hardlink_utf8, archive_entry_hardlink, entry)
                       : *kind == Kind::kSymlink ? entry_text(archive_entry_symlink_utf8, archive_entry_symlink, entry)
                                                 : nullptr;
    PESC_ASSIGN_OR_RETURN(CheckedEntry checked, checker.add(raw_name, *kind, link != nullptr ? link : ""));
    PESC_RETURN_IF_ERROR(visit(reader.get(), entry, checked, *kind));
  }
  return checker.finish();
}

// Reading every byte is what detects truncation and, for zip, bad CRCs.
// Data reads must return ARCHIVE_OK: libarchive reports a bad CRC as a mere
// ARCHIVE_WARN.
absl::Status drain_data(const fs::path& archive_file, struct archive* reader) {
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  while (true) {
    int result = archive_read_data_block(reader, &block, &size, &offset);
    if (result == ARCHIVE_EOF) return absl::OkStatus();
    if (result != ARCHIVE_OK) return unreadable(archive_file, reader);
  }
}

// ---------------------------------------------------------------- extraction

// Secure flags are defence in depth behind EntryChecker. NOABSOLUTEPATHS is
// not among them: libarchive resolves names against the working directory,
// which a multithreaded process cannot change, so every name handed to it is
// `destination/name`, absolute by construction and checked relative before.
constexpr int kExtractFlags =
    ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;

// Set-id bits never survive, and directories stay writable by their owner so
// the tree can be filled and later removed.
mode_t extracted_mode(mode_t mode, Kind kind) {
  mode_t permissions = mode & 0777;
  return kind == Kind::kDirectory ? (permissions | 0700) : permissions;
}

class DiskWriter {
 public:
  DiskWriter(fs::path archive_file, fs::path root)
      : archive_file_(std::move(archive_file)), root_(std::move(root)), disk_(archive_write_disk_new()) {
    archive_write_disk_set_options(disk_.get(), kExtractFlags);
  }

  absl::Status write(struct archive* reader, struct archive_entry* entry, const CheckedEntry& checked, Kind kind) {
    if (checked.name.empty()) return drain_data(archive_file_, reader);
    archive_entry_set_pathname(entry, (root_ / checked.name).c_str());
    if (kind == Kind::kHardlink) archive_entry_set_hardlink(entry, (root_ / checked.link).c_str());
    if (kind == Kind::kSymlink) archive_entry_set_symlink(entry, checked.link.c_str());
    if (kind != Kind::kSymlink) archive_entry_set_perm(entry, extracted_mode(archive_entry_perm(entry), kind));
    if (!succeeded(archive_write_header(disk_.get(), entry))) {
      return archive_failure(absl::StatusCode::kInvalidArgument, disk_.get(),
                             absl::StrCat(archive_file_.string(), ": cannot extract entry ", quote(checked.name)));
    }
    PESC_RETURN_IF_ERROR(copy_data(reader, checked.name));
    if (!succeeded(archive_write_finish_entry(disk_.get()))) return write_error(checked.name);
    return absl::OkStatus();
  }

  // Applies the directory modes and times libarchive defers to the end.
  absl::Status close() {
    if (!succeeded(archive_write_close(disk_.get()))) {
      return archive_failure(absl::StatusCode::kInternal, disk_.get(),
                             absl::StrCat("extracting ", archive_file_.string(), " into ", root_.string()));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status copy_data(struct archive* reader, const std::string& name) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while (true) {
      int result = archive_read_data_block(reader, &block, &size, &offset);
      if (result == ARCHIVE_EOF) return absl::OkStatus();
      if (result != ARCHIVE_OK) return unreadable(archive_file_, reader);  // as in drain_data
      // libarchive 3 returns ARCHIVE_OK here, libarchive 4 the byte count;
      // a failed write(2) (a full disk) is only ARCHIVE_WARN, and would
      // leave the file short.
      la_ssize_t written = archive_write_data_block(disk_.get(), block, size, offset);
      if (written < 0) return write_error(name);
    }
  }

  absl::Status write_error(const std::string& name) {
    return archive_failure(absl::StatusCode::kInternal, disk_.get(),
                           absl::StrCat(archive_file_.string(), ": cannot write entry ", quote(name), " into ",
                                        root_.string()));
  }

  fs::path archive_file_;
  fs::path root_;
  Writer disk_;
};

}  // namespace

absl::Status pack_directory(const fs::path& dir, const fs::path& archive_file, const std::vector<std::string>& exclude) {
  std::string context = absl::StrCat("cannot pack ", dir.string(), " into ", archive_file.string());
  std::error_code error;
  if (!fs::is_directory(dir, error)) return absl::InvalidArgumentError(absl::StrCat(context, ": not a directory"));
  ScopedUtf8Locale locale;
  absl::Status status = write_tar(dir, archive_file, exclude, context);
  if (!status.ok()) fs::remove(archive_file, error);
  return status;
}

absl::StatusOr<std::string> pack_directory_in_memory(const fs::path& dir, const std::vector<std::string>& exclude,
                                                     size_t max_bytes, const std::vector<MemoryFile>& files) {
  std::string context = absl::StrCat("cannot pack ", dir.empty() ? "files in memory" : dir.string());
  std::vector<PackItem> items;
  if (!dir.empty()) {
    std::error_code error;
    if (!fs::is_directory(dir, error)) return absl::InvalidArgumentError(absl::StrCat(context, ": not a directory"));
    std::vector<std::string> skipped = exclude;
    for (const MemoryFile& file : files) skipped.push_back(file.name);  // the file in memory replaces it
    struct stat no_file = {};  // no archive file that could lie in the tree
    PESC_ASSIGN_OR_RETURN(items, collect_tree(dir, skipped, no_file, context));
  }
  for (const MemoryFile& file : files) {
    PackItem item{file.name, dir / file.name, {}, &file.bytes};
    item.info.st_mode = S_IFREG | 0644;
    item.info.st_mtime = ::time(nullptr);
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end(), [](const PackItem& a, const PackItem& b) { return a.name < b.name; });
  ScopedUtf8Locale locale;
  BoundedBytes out{.max = max_bytes};
  Writer writer(archive_write_new());
  // Blocks of one record: the bytes are the tar's, with no padding to 10 KiB.
  if (!set_tar_format(writer.get()) || archive_write_set_bytes_per_block(writer.get(), 512) != ARCHIVE_OK ||
      archive_write_open(writer.get(), &out, nullptr, append_bounded, nullptr) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(context, ": cannot start the archive: ", error_text(writer.get())));
  }
  absl::Status written = write_tree(writer.get(), items, context);
  if (out.overflowed) {
    return absl::ResourceExhaustedError(absl::StrCat(context, ": larger than ", max_bytes, " bytes"));
  }
  PESC_RETURN_IF_ERROR(written);
  if (out.bytes.size() <= kGzipUpToBytes) return gzip(out.bytes);
  return std::move(out.bytes);
}

absl::StatusOr<std::vector<std::string>> links_leading_outside(const fs::path& dir) {
  const std::string context = absl::StrCat("cannot look into ", dir.string());
  struct stat no_file = {};
  PESC_ASSIGN_OR_RETURN(std::vector<PackItem> items, collect_tree(dir, {}, no_file, context));
  std::map<std::string, std::string> links;
  for (const PackItem& item : items) {
    if (!S_ISLNK(item.info.st_mode)) continue;
    std::error_code error;
    links[item.name] = fs::read_symlink(item.path, error).string();
  }
  return EntryChecker::escaping(std::move(links));
}

absl::StatusOr<bool> directory_is_empty_except(const fs::path& dir, const std::vector<std::string>& exclude) {
  PESC_ASSIGN_OR_RETURN(std::vector<std::string> names, directory_names(dir));
  return std::all_of(names.begin(), names.end(), [&](const std::string& name) { return is_excluded(name, exclude); });
}

absl::StatusOr<std::vector<std::string>> list_files(const fs::path& archive_file) {
  ScopedUtf8Locale locale;
  std::vector<std::string> files;
  PESC_RETURN_IF_ERROR(for_each_entry(
      archive_file, [&](struct archive* reader, struct archive_entry*, const CheckedEntry& checked, Kind kind) {
        if (kind == Kind::kFile || kind == Kind::kHardlink) files.push_back(checked.name);
        return drain_data(archive_file, reader);
      }));
  return files;
}

absl::StatusOr<std::string> read_member(const std::string& archive_bytes, const std::string& name) {
  ScopedUtf8Locale locale;
  Reader reader(archive_read_new());
  // Results are plain or gzipped (pack_directory_in_memory): bidding among
  // every filter libarchive knows would cost more than reading them.
  archive_read_support_filter_gzip(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_memory(reader.get(), archive_bytes.data(), archive_bytes.size()) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("not a readable tar or zip archive: ", error_text(reader.get())));
  }
  struct archive_entry* entry = nullptr;
  while (true) {
    const int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (!succeeded(status)) {
      return absl::InvalidArgumentError(absl::StrCat("corrupt archive: ", error_text(reader.get())));
    }
    auto entry_name = normalize_name(entry_text(&archive_entry_pathname_utf8, &archive_entry_pathname, entry));
    if (!entry_name.ok() || *entry_name != name || archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string bytes;
    char buffer[1 << 16];
    for (la_ssize_t got; (got = archive_read_data(reader.get(), buffer, sizeof buffer)) != 0;) {
      if (got < 0) return absl::DataLossError(absl::StrCat("cannot read ", name, ": ", error_text(reader.get())));
      bytes.append(buffer, static_cast<size_t>(got));
    }
    return bytes;
  }
  return absl::NotFoundError(absl::StrCat("no file ", name, " in the archive"));
}

absl::Status extract(const fs::path& archive_file, const fs::path& destination) {
  // A full pass first, so a refused archive writes nothing at all; the
  // checks run again while writing in case the file changed in between.
  PESC_RETURN_IF_ERROR(list_files(archive_file).status());
  std::error_code error;
  fs::create_directories(destination, error);
  // Canonical, so SECURE_SYMLINKS does not trip over links above the root.
  fs::path root = error ? fs::path() : fs::canonical(destination, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot extract ", archive_file.string(), ": cannot create ",
                                            destination.string(), ": ", error.message()));
  }
  ScopedUtf8Locale locale;
  DiskWriter writer(archive_file, root);
  PESC_RETURN_IF_ERROR(for_each_entry(
      archive_file, [&](struct archive* reader, struct archive_entry* entry, const CheckedEntry& checked, Kind kind) {
        return writer.write(reader, entry, checked, kind);
      }));
  return writer.close();
}

}  // namespace pesc::archive
