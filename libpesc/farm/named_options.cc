// The one table from the names clients give job options to MapOptions.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using Values = std::vector<std::string>;

absl::Status unreadable(const std::string& option, const Values& values, const char* takes) {
  return absl::InvalidArgumentError(absl::StrCat("option ", option, ": \"", absl::StrJoin(values, "\", \""),
                                                 "\" is not ", takes));
}

absl::StatusOr<std::string> one(const std::string& option, const Values& values) {
  if (values.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("option ", option, " takes one value, not ", values.size()));
  }
  return values.front();
}

absl::StatusOr<int> whole_number(const std::string& option, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(option, values));
  int number = 0;
  if (!absl::SimpleAtoi(text, &number) || number < 0) return unreadable(option, values, "a whole number >= 0");
  return number;
}

absl::StatusOr<double> number(const std::string& option, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(option, values));
  double number = 0;
  if (!absl::SimpleAtod(text, &number) || !std::isfinite(number) || number < 0) {
    return unreadable(option, values, "a number >= 0");
  }
  return number;
}

absl::StatusOr<std::chrono::milliseconds> seconds(const std::string& option, const Values& values) {
  absl::StatusOr<double> value = number(option, values);
  if (!value.ok()) return unreadable(option, values, "a number of seconds >= 0");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(*value * 1000)));
}

absl::StatusOr<bool> truth(const std::string& option, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(option, values));
  bool value = false;
  if (!absl::SimpleAtob(text, &value)) return unreadable(option, values, "true or false");
  return value;
}

absl::StatusOr<int64_t> size(const std::string& option, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(option, values));
  if (text.empty()) return 0;
  try {
    return parse_size(text);
  } catch (const Error&) {
    return unreadable(option, values, "a size: bytes, or a number with K, M, G or T (e.g. 512M)");
  }
}

absl::StatusOr<uint64_t> seed(const std::string& option, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(option, values));
  uint64_t seed = 0;
  if (!absl::SimpleAtoi(text, &seed)) return unreadable(option, values, "a whole number >= 0");
  return seed;
}

struct Option {
  const char* name;
  std::function<absl::Status(const std::string&, const Values&, MapOptions&)> set;
};

// Sets `field` of the options from what `read` makes of the values.
template <typename Read, typename Field>
Option option(const char* name, Read read, Field field) {
  return {name, [read, field](const std::string& option, const Values& values, MapOptions& options) {
            auto value = read(option, values);
            if (!value.ok()) return value.status();
            field(options) = *std::move(value);
            return absl::OkStatus();
          }};
}

absl::StatusOr<Values> all(const std::string&, const Values& values) { return values; }

const std::vector<Option>& table() {
  static const std::vector<Option> kOptions = {
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

absl::StatusOr<MapOptions> read_options(const NamedOptions& named) {
  MapOptions options;
  for (const auto& [name, values] : named) {
    auto known = std::find_if(table().begin(), table().end(), [&](const Option& o) { return name == o.name; });
    if (known == table().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option ", name, "; the options are ", absl::StrJoin(map_option_names(), ", ")));
    }
    PESC_RETURN_IF_ERROR(known->set(name, values, options));
  }
  return options;
}

}  // namespace

MapOptions map_options_from(const NamedOptions& named) {
  absl::StatusOr<MapOptions> options = read_options(named);
  if (!options.ok()) throw Error(ErrorCode::kInvalidArgument, std::string(options.status().message()));
  return *std::move(options);
}

std::vector<std::string> map_option_names() {
  std::vector<std::string> names;
  for (const Option& option : table()) names.push_back(option.name);
  return names;
}

}  // namespace pesc
