#include "worker/owner_watch.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "worker/owner_presence.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> reload_requested{false};

// The first load figure needs two samples this far apart at least.
constexpr auto kFirstSampleGap = std::chrono::milliseconds(500);

fs::file_time_type modified(const fs::path& file) {
  std::error_code error;
  return fs::last_write_time(file, error);
}

absl::StatusOr<OwnerPolicy> load_policy(const fs::path& file) {
  if (file.empty()) return OwnerPolicy{};
  absl::StatusOr<std::string> text = read_file(file);
  if (!text.ok()) return text.status();
  absl::StatusOr<OwnerPolicy> policy = parse_owner_policy(*text);
  if (!policy.ok()) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", policy.status().message()));
  return policy;
}

// Why a host this busy with other work takes no new ranks; empty when it
// takes them. While the same threshold keeps it paused the reason stays as
// it was written when it paused: a figure that changed with every sample
// made the reason look new to every client that prints it (issue 14).
std::string cpu_paused(double busy, double threshold, const std::string& before) {
  if (busy <= threshold) return "";
  const std::string over = absl::StrFormat("with other work (over %.0f%%)", threshold);
  if (absl::StartsWith(before, "the host's CPU was ") && absl::EndsWith(before, over)) return before;
  return absl::StrFormat("the host's CPU was %.0f%% busy %s", busy, over);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OwnerWatch>> OwnerWatch::start(fs::path config_file, OwnerWatchHooks hooks) {
  absl::StatusOr<OwnerPolicy> policy = load_policy(config_file);
  if (!policy.ok()) return policy.status();
  std::unique_ptr<OwnerWatch> watch(new OwnerWatch(std::move(config_file), *std::move(policy), std::move(hooks)));
  watch->load_.sample(watch->hooks_.rank_sessions());
  std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(watch->policy_.check_interval, kFirstSampleGap));
  watch->look();
  watch->thread_ = std::thread([raw = watch.get()] { raw->watch_loop(); });
  return watch;
}

OwnerWatch::OwnerWatch(fs::path config_file, OwnerPolicy policy, OwnerWatchHooks hooks)
    : config_file_(std::move(config_file)),
      hooks_(std::move(hooks)),
      config_mtime_(modified(config_file_)),
      policy_(std::move(policy)),
      load_(policy_.proc_stat) {}

OwnerWatch::~OwnerWatch() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

OwnerState OwnerWatch::state() {
  absl::MutexLock lock(&mutex_);
  return state_;
}

std::optional<double> OwnerWatch::busy_percent() {
  absl::MutexLock lock(&mutex_);
  return busy_percent_;
}

void OwnerWatch::request_reload() { reload_requested.store(true); }

void OwnerWatch::watch_loop() {
  while (true) {
    {
      absl::MutexLock lock(&mutex_);
      if (mutex_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(policy_.check_interval))) return;
    }
    reload_if_changed();
    look();
  }
}

void OwnerWatch::reload_if_changed() {
  const bool asked = reload_requested.exchange(false);
  if (config_file_.empty() || (!asked && modified(config_file_) == config_mtime_)) return;
  config_mtime_ = modified(config_file_);
  absl::StatusOr<OwnerPolicy> policy = load_policy(config_file_);
  if (!policy.ok()) {
    if (hooks_.on_note) hooks_.on_note(absl::StrCat("keeping the previous settings: ", policy.status().message()));
    return;
  }
  // Where the load is read may have moved: start its figures afresh.
  if (policy->proc_stat != policy_.proc_stat) load_ = HostLoad(policy->proc_stat);
  policy_ = *std::move(policy);
  if (hooks_.on_note) hooks_.on_note(absl::StrCat("settings read again from ", config_file_.string()));
}

void OwnerWatch::look() {
  const std::set<pid_t> sessions = hooks_.rank_sessions();
  OwnerState next = state();
  const std::optional<double> busy = load_.sample(sessions);
  if (busy) next.paused = cpu_paused(*busy, policy_.cpu_threshold, next.paused);
  const std::string someone = owner_presence(policy_, absl::Now());
  next.throttled =
      someone.empty() ? "" : absl::StrFormat("%s: ranks get %.0f%% of the CPU", someone, policy_.owner_share);
  if (someone.empty()) {
    throttle_.release();
  } else {
    throttle_.hold(sessions, policy_.owner_share / 100);
  }
  {
    absl::MutexLock lock(&mutex_);
    if (busy) busy_percent_ = busy;
    if (state_ == next) return;
    state_ = next;
  }
  if (hooks_.on_change) hooks_.on_change(next);
}

}  // namespace pesc
