#ifndef PESC_DAEMONS_DAEMON_SUPPORT_H_
#define PESC_DAEMONS_DAEMON_SUPPORT_H_

// What the three executables share besides libpesc: signals and the command
// line (CLI11: the definitions that parse also write --help and the man pages).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace pesc {

// Blocks SIGINT and SIGTERM in every thread and handles them on a thread of
// their own: by exiting with 128 + the signal until on_termination_signal()
// says otherwise. Call first thing in main, before any thread starts, so no
// thread inherits them unblocked.
void handle_termination_signals();

// What to do on SIGINT or SIGTERM from now on (called with the signal).
void on_termination_signal(std::function<void(int)> on_signal);

// The exit status of a command line the program cannot take.
inline constexpr int kExitUsage = 2;

// An App for `program` whose --help lists every flag in dash form with its
// default, and whose --version prints the program's name and PESC_VERSION.
// Options added to it (and to its subcommands) show their defaults; one
// given twice takes its last value.
void set_up_help(CLI::App& app, const std::string& program);

// A list flag: "--NAME A,B" or repeated ("--NAME A --NAME B"), the values add up.
CLI::Option* add_list_option(CLI::App& app, const std::string& name, std::vector<std::string>& values,
                             const std::string& description);

// --tls-ca, --tls-cert and --tls-key of a client of the coordinator (pesc, pesc-worker),
// in `group`.
void add_tls_client_options(CLI::App& app, std::string& tls_ca, std::string& tls_cert, std::string& tls_key,
                            const std::string& group);

// Parses argv[1..] up to a lone "--" (what follows is the caller's, see
// arguments_after_separator). Flags may also be spelled with underscores
// (--state_dir) or one dash (-state-dir), as the programs once took them.
// Returns the exit status when the program should end now: 0 after --help or
// --version (printed on stdout), kExitUsage after a one-line error naming the
// flag, command or argument it cannot take, with a pointer to the help.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// The arguments after the first lone "--", untouched.
std::vector<std::string> arguments_after_separator(int argc, char** argv);

// Prints "PROGRAM: MESSAGE; see `PROGRAM help COMMAND`" (or `PROGRAM --help`
// without a command) on stderr and returns kExitUsage.
int usage_error(const CLI::App& program, const std::string& message, const CLI::App* command = nullptr);

}  // namespace pesc

#endif  // PESC_DAEMONS_DAEMON_SUPPORT_H_
