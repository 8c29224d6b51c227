#include "archive/tar_stream.h"

#include <archive.h>
#include <archive_entry.h>

#include "absl/strings/str_cat.h"

namespace pesc::archive {
namespace {

constexpr size_t kBlock = 64 * 1024;

struct ReaderFree {
  void operator()(struct archive* reader) const { archive_read_free(reader); }
};
using Reader = std::unique_ptr<struct archive, ReaderFree>;

std::string error_of(struct archive* handle) {
  const char* text = archive_error_string(handle);
  return text != nullptr ? text : "unknown error";
}

absl::StatusOr<Reader> open_reader(const Source& source) {
  Reader reader(archive_read_new());
  archive_read_support_filter_gzip(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_zip(reader.get());
  const int opened = std::holds_alternative<std::string_view>(source)
                         ? archive_read_open_memory(reader.get(), std::get<std::string_view>(source).data(),
                                                    std::get<std::string_view>(source).size())
                         : archive_read_open_filename(reader.get(), std::get<std::filesystem::path>(source).c_str(),
                                                      kBlock);
  if (opened != ARCHIVE_OK) {
    return absl::DataLossError(absl::StrCat("not a readable tar or zip archive: ", error_of(reader.get())));
  }
  return reader;
}

bool ok(la_int64_t result) { return result == ARCHIVE_OK || result == ARCHIVE_WARN; }

}  // namespace

absl::StatusOr<std::vector<Member>> list_members(const Source& source) {
  auto reader = open_reader(source);
  if (!reader.ok()) return reader.status();
  std::vector<Member> members;
  struct archive_entry* entry = nullptr;
  for (int status; (status = archive_read_next_header(reader->get(), &entry)) != ARCHIVE_EOF;) {
    if (!ok(status)) return absl::DataLossError(absl::StrCat("corrupt archive: ", error_of(reader->get())));
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string name = archive_entry_pathname(entry);
    if (name.starts_with("./")) name.erase(0, 2);
    members.push_back({std::move(name), static_cast<uint64_t>(archive_entry_size(entry))});
  }
  return members;
}

absl::StatusOr<std::string> member_bytes(const Source& source, const std::string& name) {
  auto reader = open_reader(source);
  if (!reader.ok()) return reader.status();
  struct archive_entry* entry = nullptr;
  for (int status; (status = archive_read_next_header(reader->get(), &entry)) != ARCHIVE_EOF;) {
    if (!ok(status)) return absl::DataLossError(absl::StrCat("corrupt archive: ", error_of(reader->get())));
    std::string entry_name = archive_entry_pathname(entry);
    if (entry_name.starts_with("./")) entry_name.erase(0, 2);
    if (entry_name != name || archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string bytes;
    std::string buffer(kBlock, '\0');
    for (la_ssize_t got; (got = archive_read_data(reader->get(), buffer.data(), buffer.size())) != 0;) {
      if (got < 0) return absl::DataLossError(absl::StrCat("cannot read ", name, ": ", error_of(reader->get())));
      bytes.append(buffer.data(), static_cast<size_t>(got));
    }
    return bytes;
  }
  return absl::NotFoundError(absl::StrCat("no file \"", name, "\" among the rank's files"));
}

TarGzStream::TarGzStream(Sink sink) : sink_(std::move(sink)) {}

TarGzStream::~TarGzStream() {
  if (writer_ != nullptr) archive_write_free(writer_);
}

absl::StatusOr<std::unique_ptr<TarGzStream>> TarGzStream::open(Sink sink) {
  auto stream = std::unique_ptr<TarGzStream>(new TarGzStream(std::move(sink)));
  stream->writer_ = archive_write_new();
  auto write = [](struct archive* writer, void* self, const void* data, size_t size) -> la_ssize_t {
    auto& me = *static_cast<TarGzStream*>(self);
    if (!me.sink_(std::string_view(static_cast<const char*>(data), size))) {
      me.sink_gone_ = true;
      archive_set_error(writer, EPIPE, "the reader went away");
      return -1;
    }
    return static_cast<la_ssize_t>(size);
  };
  if (archive_write_set_format_pax_restricted(stream->writer_) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(stream->writer_) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(stream->writer_, 1) != ARCHIVE_OK ||
      archive_write_open(stream->writer_, stream.get(), nullptr, write, nullptr) != ARCHIVE_OK) {
    return stream->failed("start the archive");
  }
  return stream;
}

absl::Status TarGzStream::failed(const std::string& what) {
  if (sink_gone_) return absl::CancelledError("the archive's reader went away");
  return absl::InternalError(absl::StrCat("cannot ", what, ": ", error_of(writer_)));
}

absl::Status TarGzStream::begin_file(const std::string& name, uint64_t size) {
  std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> entry(archive_entry_new(),
                                                                               &archive_entry_free);
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
  if (!ok(archive_write_header(writer_, entry.get()))) return failed(absl::StrCat("add ", name));
  return absl::OkStatus();
}

absl::Status TarGzStream::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const la_ssize_t written = archive_write_data(writer_, bytes.data(), bytes.size());
    if (written <= 0) return failed("write the archive");
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status TarGzStream::add_file(const std::string& name, std::string_view bytes) {
  if (absl::Status begun = begin_file(name, bytes.size()); !begun.ok()) return begun;
  return write(bytes);
}

absl::Status TarGzStream::add_members(const Source& source, const std::string& prefix) {
  auto reader = open_reader(source);
  if (!reader.ok()) return reader.status();
  struct archive_entry* entry = nullptr;
  std::string buffer(kBlock, '\0');
  for (int status; (status = archive_read_next_header(reader->get(), &entry)) != ARCHIVE_EOF;) {
    if (!ok(status)) return absl::DataLossError(absl::StrCat("corrupt archive: ", error_of(reader->get())));
    std::string name = archive_entry_pathname(entry);
    if (name.starts_with("./")) name.erase(0, 2);
    if (name.empty()) continue;
    archive_entry_set_pathname(entry, absl::StrCat(prefix, "/", name).c_str());
    if (const char* target = archive_entry_hardlink(entry); target != nullptr) {
      archive_entry_set_hardlink(entry, absl::StrCat(prefix, "/", target).c_str());
    }
    if (!ok(archive_write_header(writer_, entry))) return failed(absl::StrCat("add ", name));
    for (la_ssize_t got; (got = archive_read_data(reader->get(), buffer.data(), buffer.size())) != 0;) {
      if (got < 0) return absl::DataLossError(absl::StrCat("cannot read ", name, ": ", error_of(reader->get())));
      if (absl::Status written = write(std::string_view(buffer.data(), static_cast<size_t>(got))); !written.ok()) {
        return written;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TarGzStream::finish() {
  if (archive_write_close(writer_) != ARCHIVE_OK) return failed("finish the archive");
  return absl::OkStatus();
}

}  // namespace pesc::archive
