#ifndef PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_
#define PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_

// `pesc user|worker-token|room|whoami|certs|pool`: identity and access on a
// coordinator, and certificates for a lab.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "commands.h"
#include "pesc/pesc.h"

namespace pesc::cli {

// `operands` are the words after the command, e.g. {"add", "ana"}.
int user(const Target& target, const std::vector<std::string>& operands);
int worker_token(const Target& target, const std::vector<std::string>& operands);
int room(const Target& target, const std::vector<std::string>& operands);
int whoami(const Target& target);
int certs(const std::vector<std::string>& operands, const std::vector<std::string>& hosts);

// `pesc pool add NAME --slurm ...`: what the flags said; defaults: every
// pool's (PoolOptions).
struct PoolArguments {
  bool slurm = false;
  std::string template_file;  // another batch system, by template
  std::string partition;
  std::string time_limit = absl::FormatDuration(absl::FromChrono(PoolOptions{}.time_limit));
  int max_workers = PoolOptions{}.max_workers;
  int slots_per_worker = PoolOptions{}.slots_per_worker;
  std::string idle_timeout = absl::FormatDuration(absl::FromChrono(PoolOptions{}.idle_timeout));
  std::vector<std::string> worker_args;
};
// `operands`: add NAME | list | remove NAME | resume NAME; `submit_args`
// (after --) go to the batch system's submit command.
int pool(const Target& target, const std::vector<std::string>& operands, const PoolArguments& arguments,
         const std::vector<std::string>& submit_args);
// Pools that are paused or failing, a line each, for `pesc workers`.
void print_pool_troubles(const Target& target);

}  // namespace pesc::cli

#endif  // PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_
