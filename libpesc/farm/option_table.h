#ifndef PESC_FARM_OPTION_TABLE_H_
#define PESC_FARM_OPTION_TABLE_H_

// A table from the names the bindings give options, each with its values as
// text, to the fields of an options struct (MapOptions, PoolOptions): one
// way to read them, and errors that name the option and what it takes.

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace pesc::option_table {

using Values = std::vector<std::string>;

// A reader takes `label` ("option timeout", "pool option max_workers") for
// its errors.
inline absl::Status unreadable(const std::string& label, const Values& values, const char* takes) {
  return absl::InvalidArgumentError(
      absl::StrCat(label, ": \"", absl::StrJoin(values, "\", \""), "\" is not ", takes));
}

inline absl::StatusOr<std::string> one(const std::string& label, const Values& values) {
  if (values.size() != 1) return absl::InvalidArgumentError(absl::StrCat(label, " takes one value, not ", values.size()));
  return values.front();
}

inline absl::StatusOr<int> whole_number(const std::string& label, const Values& values) {
  PESC_ASSIGN_OR_RETURN(std::string text, one(label, values));
  int number = 0;
  if (!absl::SimpleAtoi(text, &number) || number < 0) return unreadable(label, values, "a whole number >= 0");
  return number;
}

inline absl::StatusOr<Values> all(const std::string&, const Values& values) { return values; }

template <typename Options>
struct Entry {
  const char* name;
  std::function<absl::Status(const std::string& label, const Values&, Options&)> set;
};

// Sets the field `field` names (a member pointer, or a function returning a
// reference into the options) from what `read` makes of the values.
template <typename Options, typename Read, typename Field>
Entry<Options> entry(const char* name, Read read, Field field) {
  return {name, [read, field](const std::string& label, const Values& values, Options& options) {
            auto value = read(label, values);
            if (!value.ok()) return value.status();
            std::invoke(field, options) = *std::move(value);
            return absl::OkStatus();
          }};
}

template <typename Options>
std::vector<std::string> names_of(const std::vector<Entry<Options>>& table) {
  std::vector<std::string> names;
  for (const Entry<Options>& entry : table) names.push_back(entry.name);
  return names;
}

// The options `named` sets over their defaults; `kind` ("option", "pool
// option") begins each error.
template <typename Options>
absl::StatusOr<Options> read(const std::string& kind, const std::vector<Entry<Options>>& table,
                             const std::map<std::string, Values>& named) {
  Options options;
  for (const auto& [name, values] : named) {
    auto known = std::find_if(table.begin(), table.end(), [&](const Entry<Options>& e) { return name == e.name; });
    if (known == table.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown ", kind, " ", name, "; the options are ",
                                                     absl::StrJoin(names_of(table), ", ")));
    }
    PESC_RETURN_IF_ERROR(known->set(absl::StrCat(kind, " ", name), values, options));
  }
  return options;
}

}  // namespace pesc::option_table

#endif  // PESC_FARM_OPTION_TABLE_H_
