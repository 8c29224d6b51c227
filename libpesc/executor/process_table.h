#ifndef PESC_EXECUTOR_PROCESS_TABLE_H_
#define PESC_EXECUTOR_PROCESS_TABLE_H_

// The machine's processes as /proc lists them, for finding every process of
// a rank (they share its session) however it forked.

#include <sys/types.h>

#include <functional>
#include <vector>

#include "absl/strings/string_view.h"

namespace pesc {

// Field positions in ProcessStat::fields (man 5 proc, /proc/PID/stat, less
// the first two): clock ticks in USER_HZ, pages for the resident size.
inline constexpr size_t kStatProcessGroup = 2;
inline constexpr size_t kStatSession = 3;
inline constexpr size_t kStatUserTicks = 11;
inline constexpr size_t kStatSystemTicks = 12;
inline constexpr size_t kStatChildrenUserTicks = 13;
inline constexpr size_t kStatChildrenSystemTicks = 14;
inline constexpr size_t kStatResidentPages = 21;

// Calls `visit(pid, fields)` for every process, with the fields of its
// /proc/PID/stat after "pid (comm) ": fields[0] is the state.
void for_each_process(const std::function<void(pid_t, const std::vector<absl::string_view>&)>& visit);

}  // namespace pesc

#endif  // PESC_EXECUTOR_PROCESS_TABLE_H_
