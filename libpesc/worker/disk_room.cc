#include "worker/disk_room.h"

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/files.h"

namespace pesc {

std::string DiskRoom::shortage() const {
  absl::StatusOr<uint64_t> free = free_bytes(dir_);
  if (free.ok() && *free > reserve_bytes_) return "";
  last_short_unix_ms_ = now_unix_ms();
  if (!free.ok()) return absl::StrCat("disk unusable: ", free.status().message());
  return absl::StrCat("disk full: ", dir_.string(), " has ", format_bytes(*free), " free, under the ",
                      format_bytes(reserve_bytes_), " kept for ranks");
}

}  // namespace pesc
