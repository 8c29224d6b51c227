#ifndef PESC_DAEMONS_DAEMON_SUPPORT_H_
#define PESC_DAEMONS_DAEMON_SUPPORT_H_

// What the three executables share besides libpesc: signals and flags.

#include <functional>
#include <string>
#include <vector>

namespace pesc {

// Blocks SIGINT and SIGTERM in every thread and handles them on a thread of
// their own: by exiting with 128 + the signal until on_termination_signal()
// says otherwise. Call first thing in main, before any thread starts, so no
// thread inherits them unblocked.
void handle_termination_signals();

// What to do on SIGINT or SIGTERM from now on (called with the signal).
void on_termination_signal(std::function<void(int)> on_signal);

// The usage line --help shows, and what --version prints: the program's
// name and PESC_VERSION (not absl's "Debug build" notice).
void set_usage(const std::string& program, const std::string& usage);

// absl spells flags with underscores; people type --state-dir. Rewrites
// "--state-dir" to "--state_dir" in every flag name before a lone "--".
// The list flags named in `repeatable` may be given more than once; their
// values add up.
std::vector<char*> with_flag_names_normalized(int argc, char** argv, std::vector<std::string>& storage,
                                              const std::vector<std::string>& repeatable = {});

}  // namespace pesc

#endif  // PESC_DAEMONS_DAEMON_SUPPORT_H_
