#ifndef PESC_DAEMONS_COORDINATOR_CONFIG_H_
#define PESC_DAEMONS_COORDINATOR_CONFIG_H_

// `pesc-coordinator --config FILE`: the coordinator's flags as keys
// (`listen = 0.0.0.0:7070`, `state-dir = /srv/pesc`), and pools as
// [pool NAME] sections (pool/pool_settings.h). A flag given on the command
// line wins over the file's.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "pool/pool_types.h"

namespace pesc {

// Sets each option of `app` that the command line left out from the file,
// and returns the file's pools, checked. Errors name the file, the line and
// what to change.
absl::StatusOr<std::vector<PoolSpec>> apply_config_file(CLI::App& app, const std::filesystem::path& file);

}  // namespace pesc

#endif  // PESC_DAEMONS_COORDINATOR_CONFIG_H_
