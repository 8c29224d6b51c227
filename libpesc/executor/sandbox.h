#ifndef PESC_EXECUTOR_SANDBOX_H_
#define PESC_EXECUTOR_SANDBOX_H_

// What keeps a rank from hurting the worker or other ranks, as plain
// values a RankLaunch carries: the limits it runs under, the user it runs
// as, and the bubblewrap sandbox it runs in.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

// What one rank may use; 0: no limit.
struct ResourceLimits {
  int64_t memory_bytes = 0;  // all its processes together (cgroup, else a watch on their RSS)
  int64_t cpu_ms = 0;        // each process (RLIMIT_CPU)
  int open_files = 0;        // each process (RLIMIT_NOFILE)
  int processes = 0;         // at once (cgroup pids.max, else RLIMIT_NPROC of its user)
  int64_t output_bytes = 0;  // output_dir in all (a watch) and each file (RLIMIT_FSIZE)
};

// The unprivileged account ranks run as when the worker is root.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  bool operator==(const Credentials&) const = default;
};

// Looks `name` up; when it does not exist and `create` is set, makes it a
// system account without a home or login shell (useradd --system).
absl::StatusOr<Credentials> ensure_user(const std::string& name, bool create);

// A bubblewrap sandbox: the system read-only, only the rank's own
// directories writable, a private /tmp, /dev/shm, /proc and /dev, no network
// unless asked, and nothing else of the machine (work dirs, homes) visible.
// Nothing else in it is writable either, so a slot's launcher
// (executor/slot_launcher.h) knows all a rank could leave for the next.
struct Sandbox {
  std::filesystem::path bwrap;
  std::vector<std::filesystem::path> writable;   // the rank's app, output and checkpoint dirs
  std::vector<std::filesystem::path> read_only;  // extra paths to show, e.g. an interpreter outside /usr
  // Shown empty even inside the system dirs: the worker's token file, its
  // work dir (the rank's own dirs in it are bound over it), the
  // coordinator's state dir.
  std::vector<std::filesystem::path> hidden;
  std::vector<std::filesystem::path> devices;    // host devices it may use, e.g. its GPUs' /dev/nvidia*
  bool network = false;
  // The command is the sandbox's init (pid 1) rather than bubblewrap's: it
  // must reap orphans, and nothing inside can signal it (a slot's launcher).
  bool command_is_init = false;
  bool operator==(const Sandbox&) const = default;
};

// The device files of NVIDIA GPUs `gpus` (driver indices) and the driver's
// shared ones, as far as they exist on this host.
std::vector<std::filesystem::path> nvidia_devices(const std::vector<int>& gpus);

// bwrap on PATH or in the usual places; nullopt when not installed.
std::optional<std::filesystem::path> find_bwrap();

// Whether bwrap can make its namespaces here (it cannot inside some
// containers); the error says why not.
absl::Status probe_bwrap(const std::filesystem::path& bwrap, const std::optional<Credentials>& run_as);

// The words that run `argv` inside `sandbox`, starting in `working_dir`.
std::vector<std::string> sandboxed_argv(const Sandbox& sandbox, const std::filesystem::path& working_dir,
                                        const std::vector<std::string>& argv);

}  // namespace pesc

#endif  // PESC_EXECUTOR_SANDBOX_H_
