#include "worker/disk_room.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/files.h"

namespace pesc {

std::string DiskRoom::shortage(const std::string& before) const {
  absl::StatusOr<uint64_t> free = free_bytes(dir_);
  if (free.ok() && *free > reserve_bytes_) return "";
  last_short_unix_ms_ = now_unix_ms();
  if (!free.ok()) return absl::StrCat("disk unusable: ", free.status().message());
  const std::string full = absl::StrCat("disk full: ", dir_.string(), " has ");
  if (absl::StartsWith(before, full)) return before;
  return absl::StrCat(full, format_bytes(*free), " free, under the ",
                      format_bytes(reserve_bytes_), " kept for ranks");
}

}  // namespace pesc
