#ifndef PESC_POOL_POOL_SETTINGS_H_
#define PESC_POOL_POOL_SETTINGS_H_

// A pool in a config file: a [pool NAME] section whose keys are the flags of
// `pesc pool add` (README: "Pools"):
//
//   [pool cluster]
//   batch-system = slurm          (or: template = pbs.batch)
//   partition = compute
//   time-limit = 2h
//   max-workers = 20
//   submit-args = --account=lab42

#include <filesystem>

#include "absl/status/statusor.h"
#include "pool/pool_types.h"
#include "pool/settings_file.h"

namespace pesc {

// The pool's spec, checked as `pesc pool add` would be; a template file is
// read relative to `base_dir` (the config file's). Errors name the file,
// the line and what to change.
absl::StatusOr<PoolSpec> pool_spec_from_settings(const SettingsSection& section, const std::filesystem::path& base_dir);

}  // namespace pesc

#endif  // PESC_POOL_POOL_SETTINGS_H_
