#ifndef PESC_WORKER_OWNER_POLICY_H_
#define PESC_WORKER_OWNER_POLICY_H_

// How a worker on a desktop gives way to the desktop's people: the settings
// of pesc-worker --config FILE, a "key = value" file ('#' starts a comment).
//
//   cpu_threshold = 70        # % of the host's CPU busy with other work: above it, no new ranks
//   owner_share = 10          # % of the CPU the ranks get together while someone uses the machine
//   owner_idle_seconds = 120  # keyboard, mouse or terminal quiet this long: nobody is using it
//   check_seconds = 1         # how often the host is looked at
//
// Where the measurements come from, for tests that stand in for hardware:
//   proc_stat = /proc/stat    utmp = /var/run/utmp    dev_dir = /dev (ttys of utmp's lines)
//   input_dirs = /dev/input   (comma-separated; keyboards and mice)

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

struct OwnerPolicy {
  double cpu_threshold = 70;
  double owner_share = 10;
  std::chrono::seconds owner_idle{120};
  std::chrono::milliseconds check_interval{1000};
  std::filesystem::path proc_stat = "/proc/stat";
  std::filesystem::path utmp = "/var/run/utmp";
  std::filesystem::path dev_dir = "/dev";
  std::vector<std::filesystem::path> input_dirs = {"/dev/input"};
};

// The policy a file's text sets; keys it leaves out keep their defaults.
absl::StatusOr<OwnerPolicy> parse_owner_policy(const std::string& text);

}  // namespace pesc

#endif  // PESC_WORKER_OWNER_POLICY_H_
