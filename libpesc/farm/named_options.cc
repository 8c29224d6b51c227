// The one table from the names clients give job options to MapOptions.
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "common/status_macros.h"
#include "farm/option_table.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using option_table::all;
using option_table::one;
using option_table::unreadable;
using option_table::Values;
using option_table::whole_number;

absl::StatusOr<double> number(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  double number = 0;
  if (!absl::SimpleAtod(text, &number) || !std::isfinite(number) || number < 0) {
    return unreadable(label, values, "a number >= 0");
  }
  return number;
}

absl::StatusOr<std::chrono::milliseconds> seconds(const std::string& label, const Values& values) {
  absl::StatusOr<double> value = number(label, values);
  if (!value.ok()) return unreadable(label, values, "a number of seconds >= 0");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(*value * 1000)));
}

absl::StatusOr<bool> truth(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  bool value = false;
  if (!absl::SimpleAtob(text, &value)) return unreadable(label, values, "true or false");
  return value;
}

absl::StatusOr<int64_t> size(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  if (text.empty()) return 0;
  try {
    return parse_size(text);
  } catch (const Error&) {
    return unreadable(label, values, "a size: bytes, or a number with K, M, G or T (e.g. 512M)");
  }
}

absl::StatusOr<uint64_t> seed(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  uint64_t seed = 0;
  if (!absl::SimpleAtoi(text, &seed)) return unreadable(label, values, "a whole number >= 0");
  return seed;
}

template <typename Read, typename Field>
option_table::Entry<MapOptions> option(const char* name, Read read, Field field) {
  return option_table::entry<MapOptions>(name, read, field);
}

const std::vector<option_table::Entry<MapOptions>>& table() {
  static const std::vector<option_table::Entry<MapOptions>> kOptions = {
      option("entry", one, [](MapOptions& o) -> auto& { return o.entry; }),
      option("name", one, [](MapOptions& o) -> auto& { return o.name; }),
      option("max_attempts", whole_number, [](MapOptions& o) -> auto& { return o.max_attempts; }),
      option("timeout", seconds, [](MapOptions& o) -> auto& { return o.timeout; }),
      option("checkpoint_interval", seconds, [](MapOptions& o) -> auto& { return o.checkpoint_interval; }),
      option("warm_runner", truth, [](MapOptions& o) -> auto& { return o.warm_runner; }),
      option("rooms", all, [](MapOptions& o) -> auto& { return o.rooms; }),
      option("same_machine", truth, [](MapOptions& o) -> auto& { return o.same_machine; }),
      option("shared", all, [](MapOptions& o) -> auto& { return o.shared; }),
      option("memory", size, [](MapOptions& o) -> auto& { return o.limits.memory_bytes; }),
      option("cpu_time", seconds, [](MapOptions& o) -> auto& { return o.limits.cpu_time; }),
      option("open_files", whole_number, [](MapOptions& o) -> auto& { return o.limits.open_files; }),
      option("processes", whole_number, [](MapOptions& o) -> auto& { return o.limits.processes; }),
      option("output_size", size, [](MapOptions& o) -> auto& { return o.limits.output_bytes; }),
      option("network", truth, [](MapOptions& o) -> auto& { return o.network; }),
      option("parallel", truth, [](MapOptions& o) -> auto& { return o.parallel; }),
      option("no_duplicates", truth, [](MapOptions& o) -> auto& { return o.no_duplicates; }),
      option("gpus", whole_number, [](MapOptions& o) -> auto& { return o.gpus; }),
      option("min_capability", number, [](MapOptions& o) -> auto& { return o.min_capability; }),
      option("seed", seed, [](MapOptions& o) -> auto& { return o.seed; }),
      option("notify", all, [](MapOptions& o) -> auto& { return o.notify; }),
  };
  return kOptions;
}

}  // namespace

MapOptions map_options_from(const NamedOptions& named) {
  absl::StatusOr<MapOptions> options = option_table::read("option", table(), named);
  if (!options.ok()) throw Error(ErrorCode::kInvalidArgument, std::string(options.status().message()));
  return *std::move(options);
}

std::vector<std::string> map_option_names() { return option_table::names_of(table()); }

}  // namespace pesc
