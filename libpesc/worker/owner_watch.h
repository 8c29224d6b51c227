#ifndef PESC_WORKER_OWNER_WATCH_H_
#define PESC_WORKER_OWNER_WATCH_H_

// Owners first: a worker on a desktop watches, every few seconds, how busy
// the host is with other work and whether a person uses it, and applies its
// OwnerPolicy: above the CPU threshold it takes no new ranks (the
// coordinator is told why), and while someone is at the machine its ranks
// are throttled. The policy file is read again when it changes or on
// request (SIGHUP), without a restart.
//
// Thread-safety: state() from any thread; the callbacks run on the watch's
// own thread.

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/host_load.h"
#include "worker/owner_policy.h"
#include "worker/rank_throttle.h"

namespace pesc {

struct OwnerState {
  std::string paused;     // why no new ranks now; empty: it takes them
  std::string throttled;  // why its ranks are held back now; empty: they are not
  bool operator==(const OwnerState&) const = default;
};

struct OwnerWatchHooks {
  // Session ids of the worker's running ranks.
  std::function<std::set<pid_t>()> rank_sessions;
  // The state changed.
  std::function<void(const OwnerState&)> on_change;
  // A note for the operator (a policy file that could not be used).
  std::function<void(const std::string&)> on_note;
};

class OwnerWatch {
 public:
  // Reads the policy (`config_file` empty: the defaults) and measures once
  // before returning, so the first registration already tells the truth.
  static absl::StatusOr<std::unique_ptr<OwnerWatch>> start(std::filesystem::path config_file,
                                                           OwnerWatchHooks hooks);
  ~OwnerWatch();  // its ranks run freely again

  OwnerState state();
  // Percent of the host's CPUs busy with other work at the last look;
  // nullopt before two looks, or when /proc/stat cannot be read.
  std::optional<double> busy_percent();

  // Re-read the policy file at the next look. Async-signal-safe: for SIGHUP.
  static void request_reload();

 private:
  OwnerWatch(std::filesystem::path config_file, OwnerPolicy policy, OwnerWatchHooks hooks);
  void look();
  void reload_if_changed();
  void watch_loop();

  const std::filesystem::path config_file_;
  const OwnerWatchHooks hooks_;
  std::filesystem::file_time_type config_mtime_;
  OwnerPolicy policy_;  // the watch thread's alone after start
  HostLoad load_;
  RankThrottle throttle_;
  absl::Mutex mutex_;
  OwnerState state_ ABSL_GUARDED_BY(mutex_);
  std::optional<double> busy_percent_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace pesc

#endif  // PESC_WORKER_OWNER_WATCH_H_
