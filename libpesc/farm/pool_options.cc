// PoolOptions by the names the bindings give them.
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using Values = std::vector<std::string>;

absl::StatusOr<std::string> one_text(const std::string& option, const Values& values) {
  if (values.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("pool option ", option, " takes one value, not ", values.size()));
  }
  return values.front();
}

absl::StatusOr<int> count(const std::string& option, const Values& values) {
  auto text = one_text(option, values);
  if (!text.ok()) return text.status();
  int number = 0;
  if (!absl::SimpleAtoi(*text, &number) || number < 0) {
    return absl::InvalidArgumentError(absl::StrCat("pool option ", option, ": \"", *text, "\" is not a whole number >= 0"));
  }
  return number;
}

// "90s", "10m", "1h" or seconds.
absl::StatusOr<std::chrono::seconds> duration(const std::string& option, const Values& values) {
  auto text = one_text(option, values);
  if (!text.ok()) return text.status();
  int64_t seconds = 0;
  absl::Duration parsed;
  if (absl::SimpleAtoi(*text, &seconds) && seconds > 0) return std::chrono::seconds(seconds);
  if (absl::ParseDuration(*text, &parsed) && parsed > absl::ZeroDuration()) {
    return std::chrono::seconds(absl::ToInt64Seconds(parsed));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("pool option ", option, ": \"", *text, "\" is not a duration such as 90s, 10m or 1h"));
}

absl::StatusOr<Values> every(const std::string&, const Values& values) { return values; }

struct Field {
  const char* name;
  std::function<absl::Status(const std::string&, const Values&, PoolOptions&)> set;
};

template <typename Read, typename Member>
Field field(const char* name, Read read, Member member) {
  return {name, [read, member](const std::string& option, const Values& values, PoolOptions& options) {
            auto value = read(option, values);
            if (!value.ok()) return value.status();
            options.*member = *std::move(value);
            return absl::OkStatus();
          }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      field("batch_system", one_text, &PoolOptions::batch_system),
      field("partition", one_text, &PoolOptions::partition),
      field("time_limit", duration, &PoolOptions::time_limit),
      field("max_workers", count, &PoolOptions::max_workers),
      field("slots_per_worker", count, &PoolOptions::slots_per_worker),
      field("idle_timeout", duration, &PoolOptions::idle_timeout),
      field("submit_args", every, &PoolOptions::submit_args),
      field("worker_args", every, &PoolOptions::worker_args),
      field("worker", one_text, &PoolOptions::worker),
      field("listen", one_text, &PoolOptions::listen),
      field("local_slots", count, &PoolOptions::local_slots),
  };
  return kFields;
}

}  // namespace

PoolOptions pool_options_from(const std::map<std::string, std::vector<std::string>>& named) {
  PoolOptions options;
  for (const auto& [name, values] : named) {
    auto known = std::find_if(fields().begin(), fields().end(), [&](const Field& f) { return name == f.name; });
    if (known == fields().end()) {
      std::vector<std::string> names;
      for (const Field& f : fields()) names.push_back(f.name);
      throw Error(ErrorCode::kInvalidArgument,
                  absl::StrCat("unknown pool option ", name, "; the options are ", absl::StrJoin(names, ", ")));
    }
    if (absl::Status set = known->set(name, values, options); !set.ok()) {
      throw Error(ErrorCode::kInvalidArgument, std::string(set.message()));
    }
  }
  return options;
}

}  // namespace pesc
