#ifndef PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_
#define PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_

// `pesc user|worker-token|room|whoami|certs`: identity and access on a
// coordinator, and certificates for a lab.

#include <string>
#include <vector>

#include "commands.h"

namespace pesc::cli {

// `operands` are the words after the command, e.g. {"add", "ana"}.
int user(const Target& target, const std::vector<std::string>& operands);
int worker_token(const Target& target, const std::vector<std::string>& operands);
int room(const Target& target, const std::vector<std::string>& operands);
int whoami(const Target& target);
int certs(const std::vector<std::string>& operands, const std::vector<std::string>& hosts);

}  // namespace pesc::cli

#endif  // PESC_DAEMONS_PESC_ADMIN_COMMANDS_H_
