#ifndef PESC_ARCHIVE_TAR_STREAM_H_
#define PESC_ARCHIVE_TAR_STREAM_H_

// A gzipped tar written as it is made, to a sink such as an HTTP response,
// so that an archive of a whole job is never held whole in memory or on
// disk; and the members of the tars that carry rank outputs.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct archive;

namespace pesc::archive {

// A tar, plain or gzipped, or a zip: its bytes in memory, or its file.
using Source = std::variant<std::string_view, std::filesystem::path>;

struct Member {
  std::string name;
  uint64_t size = 0;
};
// The regular files of an archive, in archive order.
absl::StatusOr<std::vector<Member>> list_members(const Source& source);

// The bytes of the regular file `name` in it; NotFound when there is none.
absl::StatusOr<std::string> member_bytes(const Source& source, const std::string& name);

class TarGzStream {
 public:
  // Takes the next bytes; false when whoever reads them has gone.
  using Sink = std::function<bool(std::string_view)>;

  static absl::StatusOr<std::unique_ptr<TarGzStream>> open(Sink sink);
  ~TarGzStream();
  TarGzStream(const TarGzStream&) = delete;
  TarGzStream& operator=(const TarGzStream&) = delete;

  // A regular file of `size` bytes, given in the write() calls that follow.
  absl::Status begin_file(const std::string& name, uint64_t size);
  absl::Status write(std::string_view bytes);
  absl::Status add_file(const std::string& name, std::string_view bytes);
  // Every entry of `source` (files, directories, links inside it) under
  // `prefix`/, without unpacking it anywhere.
  absl::Status add_members(const Source& source, const std::string& prefix);
  // Writes the tar's end and flushes gzip; nothing may follow.
  absl::Status finish();

 private:
  explicit TarGzStream(Sink sink);
  absl::Status failed(const std::string& what);

  Sink sink_;
  struct archive* writer_ = nullptr;
  bool sink_gone_ = false;
};

}  // namespace pesc::archive

#endif  // PESC_ARCHIVE_TAR_STREAM_H_
