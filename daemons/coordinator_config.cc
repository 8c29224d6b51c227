#include "coordinator_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pool/pool_settings.h"
#include "pool/settings_file.h"

namespace pesc {
namespace {

// The flags a config file may set: every long option but --config and --help.
std::map<std::string, CLI::Option*> settable_options(CLI::App& app) {
  std::map<std::string, CLI::Option*> options;
  for (CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) {
      if (name != "config" && name != "help" && name != "version") options[name] = option;
    }
  }
  return options;
}

absl::Status apply_setting(const SettingsSection& top, const Setting& setting, CLI::Option& option) {
  if (option.count() > 0) return absl::OkStatus();  // the command line said otherwise
  try {
    option.add_result(setting.value);
    option.run_callback();
  } catch (const CLI::Error& error) {
    return top.error(setting, absl::StrCat("\"", setting.key, " = ", setting.value, "\": ", error.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<PoolSpec>> apply_config_file(CLI::App& app, const std::filesystem::path& file) {
  auto parsed = read_settings_file(file);
  if (!parsed.ok()) return parsed.status();
  const std::map<std::string, CLI::Option*> options = settable_options(app);
  std::set<std::string> keys;
  for (const auto& [name, option] : options) keys.insert(name);
  if (absl::Status only = parsed->top.only(keys); !only.ok()) return only;
  for (const Setting& setting : parsed->top.settings()) {
    if (absl::Status applied = apply_setting(parsed->top, setting, *options.at(setting.key)); !applied.ok()) {
      return applied;
    }
  }
  std::vector<PoolSpec> pools;
  std::set<std::string> names;
  for (const SettingsSection& section : parsed->sections) {
    if (section.kind() != "pool") {
      return absl::InvalidArgumentError(absl::StrCat(section.where(), ": unknown section [", section.kind(), " ",
                                                     section.name(), "]; the only sections are [pool NAME]"));
    }
    if (!names.insert(section.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(section.where(), ": a second [pool ", section.name(), "]; give each pool its own name"));
    }
    auto spec = pool_spec_from_settings(section, file.parent_path());
    if (!spec.ok()) return spec.status();
    pools.push_back(*std::move(spec));
  }
  return pools;
}

}  // namespace pesc
