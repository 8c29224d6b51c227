#include "pool/pool_settings.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "pool/pool_manager.h"

namespace pesc {
namespace {

absl::StatusOr<std::chrono::seconds> seconds_of(const SettingsSection& section, const Setting& setting) {
  absl::Duration duration;
  if (!absl::ParseDuration(setting.value, &duration) || duration <= absl::ZeroDuration()) {
    return section.error(setting, absl::StrCat("\"", setting.key, "\" wants a duration such as 90s, 5m or 1h, not \"",
                                               setting.value, "\""));
  }
  return std::chrono::seconds(absl::ToInt64Seconds(duration));
}

absl::StatusOr<int32_t> count_of(const SettingsSection& section, const Setting& setting) {
  int32_t count = 0;
  if (!absl::SimpleAtoi(setting.value, &count) || count < 1) {
    return section.error(
        setting, absl::StrCat("\"", setting.key, "\" wants a whole number of at least 1, not \"", setting.value, "\""));
  }
  return count;
}

absl::Status set_batch_system(const SettingsSection& section, const std::filesystem::path& base_dir,
                              PoolSpec& spec) {
  const Setting* named = section.find("batch-system");
  const Setting* file = section.find("template");
  if ((named == nullptr) == (file == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(section.where(), ": [pool ", section.name(),
                                                   "] needs one of `batch-system = slurm` or `template = FILE` "
                                                   "(another batch system's template)"));
  }
  if (named != nullptr) {
    spec.batch_system = named->value;
    return absl::OkStatus();
  }
  spec.batch_system.clear();  // the template's name, once checked
  const std::filesystem::path path = base_dir / file->value;
  auto text = read_file(path);
  if (!text.ok()) return section.error(*file, std::string(text.status().message()));
  spec.batch_template = *std::move(text);
  spec.batch_template_file = path.string();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PoolSpec> pool_spec_from_settings(const SettingsSection& section,
                                                 const std::filesystem::path& base_dir) {
  if (absl::Status only = section.only({"batch-system", "template", "partition", "time-limit", "max-workers",
                                        "slots-per-worker", "idle-timeout", "submit-args", "worker-args"});
      !only.ok()) {
    return only;
  }
  // The defaults of every pool: PoolOptions'.
  PoolSpec spec = pool_spec_of(section.name(), PoolOptions());
  if (absl::Status set = set_batch_system(section, base_dir, spec); !set.ok()) return set;
  for (const Setting& setting : section.settings()) {
    if (setting.key == "partition") spec.partition = setting.value;
    if (setting.key == "time-limit" || setting.key == "idle-timeout") {
      auto seconds = seconds_of(section, setting);
      if (!seconds.ok()) return seconds.status();
      (setting.key == "time-limit" ? spec.time_limit : spec.idle_timeout) = *seconds;
    }
    if (setting.key == "max-workers" || setting.key == "slots-per-worker") {
      auto count = count_of(section, setting);
      if (!count.ok()) return count.status();
      (setting.key == "max-workers" ? spec.max_workers : spec.slots_per_worker) = *count;
    }
    if (setting.key == "submit-args" || setting.key == "worker-args") {
      auto words = split_words(setting.value);
      if (!words.ok()) return section.error(setting, std::string(words.status().message()));
      (setting.key == "submit-args" ? spec.submit_args : spec.worker_args) = *std::move(words);
    }
  }
  if (absl::Status checked = check_pool_spec(spec); !checked.ok()) {
    return absl::Status(checked.code(),
                        absl::StrCat(section.where(), ": [pool ", section.name(), "]: ", checked.message()));
  }
  return spec;
}

}  // namespace pesc
