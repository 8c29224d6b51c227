// PoolOptions by the names the bindings give them.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "farm/option_table.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using option_table::all;
using option_table::one;
using option_table::Values;
using option_table::whole_number;

// "90s", "10m", "1h" or seconds.
absl::StatusOr<std::chrono::seconds> duration(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  int64_t seconds = 0;
  absl::Duration parsed;
  if (absl::SimpleAtoi(text, &seconds) && seconds > 0) return std::chrono::seconds(seconds);
  if (absl::ParseDuration(text, &parsed) && parsed > absl::ZeroDuration()) {
    return std::chrono::seconds(absl::ToInt64Seconds(parsed));
  }
  return option_table::unreadable(label, values, "a duration such as 90s, 10m or 1h");
}

template <typename Read, typename Member>
option_table::Entry<PoolOptions> field(const char* name, Read read, Member member) {
  return option_table::entry<PoolOptions>(name, read, member);
}

const std::vector<option_table::Entry<PoolOptions>>& fields() {
  static const std::vector<option_table::Entry<PoolOptions>> kFields = {
      field("batch_system", one, &PoolOptions::batch_system),
      field("partition", one, &PoolOptions::partition),
      field("time_limit", duration, &PoolOptions::time_limit),
      field("max_workers", whole_number, &PoolOptions::max_workers),
      field("slots_per_worker", whole_number, &PoolOptions::slots_per_worker),
      field("idle_timeout", duration, &PoolOptions::idle_timeout),
      field("submit_args", all, &PoolOptions::submit_args),
      field("worker_args", all, &PoolOptions::worker_args),
      field("worker", one, &PoolOptions::worker),
      field("listen", one, &PoolOptions::listen),
      field("local_slots", whole_number, &PoolOptions::local_slots),
  };
  return kFields;
}

}  // namespace

PoolOptions pool_options_from(const std::map<std::string, std::vector<std::string>>& named) {
  absl::StatusOr<PoolOptions> options = option_table::read("pool option", fields(), named);
  if (!options.ok()) throw Error(ErrorCode::kInvalidArgument, std::string(options.status().message()));
  return *std::move(options);
}

}  // namespace pesc
