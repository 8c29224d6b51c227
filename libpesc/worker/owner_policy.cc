#include "worker/owner_policy.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pesc {
namespace {

absl::StatusOr<double> number(absl::string_view key, absl::string_view value, double least, double most) {
  double parsed = 0;
  if (!absl::SimpleAtod(value, &parsed) || !std::isfinite(parsed) || parsed < least || parsed > most) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " wants a number from ", least, " to ", most, ", not \"", value, "\""));
  }
  return parsed;
}

absl::Status set(OwnerPolicy& policy, absl::string_view key, absl::string_view value) {
  if (key == "cpu_threshold" || key == "owner_share") {
    absl::StatusOr<double> percent = number(key, value, 0, 100);
    if (!percent.ok()) return percent.status();
    (key == "cpu_threshold" ? policy.cpu_threshold : policy.owner_share) = *percent;
  } else if (key == "owner_idle_seconds") {
    absl::StatusOr<double> seconds = number(key, value, 0, 1e7);
    if (!seconds.ok()) return seconds.status();
    policy.owner_idle = std::chrono::seconds(std::llround(*seconds));
  } else if (key == "check_seconds") {
    absl::StatusOr<double> seconds = number(key, value, 0.05, 3600);
    if (!seconds.ok()) return seconds.status();
    policy.check_interval = std::chrono::milliseconds(std::llround(*seconds * 1000));
  } else if (key == "proc_stat") {
    policy.proc_stat = std::string(value);
  } else if (key == "utmp") {
    policy.utmp = std::string(value);
  } else if (key == "dev_dir") {
    policy.dev_dir = std::string(value);
  } else if (key == "input_dirs") {
    policy.input_dirs.clear();
    for (absl::string_view dir : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      policy.input_dirs.emplace_back(std::string(absl::StripAsciiWhitespace(dir)));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown setting \"", key, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OwnerPolicy> parse_owner_policy(const std::string& text) {
  OwnerPolicy policy;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits('=', 1));
    absl::Status applied =
        parts.size() != 2
            ? absl::InvalidArgumentError("want key = value")
            : set(policy, absl::StripAsciiWhitespace(parts[0]), absl::StripAsciiWhitespace(parts[1]));
    if (!applied.ok()) return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", applied.message()));
  }
  return policy;
}

}  // namespace pesc
