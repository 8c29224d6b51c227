#ifndef PESC_WORKER_DISK_ROOM_H_
#define PESC_WORKER_DISK_ROOM_H_

// Whether the filesystem of a worker's work dir has room for ranks. On a
// full disk a rank's own writes fail, and the rank may not even notice (its
// output.txt simply stays empty), so a worker runs ranks only while at least
// a small reserve is free there, and trusts no rank that ended without it.
//
// Thread-safe: it only asks the kernel (statvfs).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

namespace pesc {

class DiskRoom {
 public:
  DiskRoom(std::filesystem::path dir, uint64_t reserve_bytes) : dir_(std::move(dir)), reserve_bytes_(reserve_bytes) {}

  // Why ranks cannot run here now, e.g. "disk full: /var/tmp/pesc-worker has
  // 12 KiB free, under the 16 MiB kept for ranks"; empty while they can.
  // While the disk stays full, `before` (the reason it gave when it filled)
  // stands: a free-space figure new on every check would be a new reason to
  // every client that prints why a job waits.
  std::string shortage(const std::string& before = "") const;
  // Whether shortage() has found the disk short since `unix_ms`: a disk
  // that filled and emptied again while a rank ran may have lost its writes.
  bool was_short_since(int64_t unix_ms) const { return last_short_unix_ms_.load() >= unix_ms; }

 private:
  const std::filesystem::path dir_;
  const uint64_t reserve_bytes_;
  mutable std::atomic<int64_t> last_short_unix_ms_{-1};
};

}  // namespace pesc

#endif  // PESC_WORKER_DISK_ROOM_H_
