#include "worker/host_load.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <utility>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "executor/process_table.h"

namespace pesc {
namespace {

// All CPUs' ticks from the "cpu user nice system idle iowait irq softirq
// steal ..." line; busy is everything but idle and iowait.
std::optional<std::pair<int64_t, int64_t>> total_and_busy(const std::filesystem::path& proc_stat) {
  std::ifstream in(proc_stat);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (words.size() < 5 || words[0] != "cpu") return std::nullopt;
  int64_t total = 0, idle = 0;
  // guest and guest_nice (words 9 and 10) are already in user and nice.
  for (size_t i = 1; i < std::min<size_t>(words.size(), 9); ++i) {
    int64_t ticks = 0;
    if (!absl::SimpleAtoi(words[i], &ticks)) return std::nullopt;
    total += ticks;
    if (i == 4 || i == 5) idle += ticks;
  }
  return std::make_pair(total, total - idle);
}

int64_t ticks_of(const std::vector<absl::string_view>& fields) {
  int64_t ticks = 0;
  for (size_t field : {kStatUserTicks, kStatSystemTicks, kStatChildrenUserTicks, kStatChildrenSystemTicks}) {
    int64_t value = 0;
    if (absl::SimpleAtoi(fields[field], &value)) ticks += value;
  }
  return ticks;
}

// CPU ticks the worker is behind: its own and its children's, reaped ones
// included, so that a rank that ends between two samples still counts as
// the worker's (its ticks move into the worker's children's at its end),
// plus the running ranks', whatever process they forked.
int64_t own_ticks(const std::set<pid_t>& rank_sessions) {
  const pid_t self = ::getpid();
  int64_t ticks = 0;
  for_each_process([&](pid_t pid, const std::vector<absl::string_view>& fields) {
    pid_t session = 0;
    if (pid == self || (absl::SimpleAtoi(fields[kStatSession], &session) && rank_sessions.contains(session))) {
      ticks += ticks_of(fields);
    }
  });
  return ticks;
}

}  // namespace

std::optional<double> HostCpu::sample() {
  auto now = total_and_busy(proc_stat_);
  if (!now) return std::nullopt;
  std::optional<std::pair<int64_t, int64_t>> before = std::exchange(previous_, now);
  if (!before || now->first <= before->first) return std::nullopt;
  return 100.0 * static_cast<double>(std::max<int64_t>(0, now->second - before->second)) /
         static_cast<double>(now->first - before->first);
}

std::optional<double> HostLoad::sample(const std::set<pid_t>& rank_sessions) {
  auto host = total_and_busy(proc_stat_);
  if (!host) return std::nullopt;
  Ticks now{host->first, host->second, own_ticks(rank_sessions)};
  std::optional<Ticks> before = std::exchange(previous_, now);
  if (!before || now.total <= before->total) return std::nullopt;
  // Never below zero, should a process of a rank escape its session.
  const int64_t ranks = std::max<int64_t>(0, now.ranks - before->ranks);
  const int64_t others = std::max<int64_t>(0, now.busy - before->busy - ranks);
  return 100.0 * static_cast<double>(others) / static_cast<double>(now.total - before->total);
}

}  // namespace pesc
