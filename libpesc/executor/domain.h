#ifndef PESC_EXECUTOR_DOMAIN_H_
#define PESC_EXECUTOR_DOMAIN_H_

// A domain says how to start a process: which interpreter runs the entry.
// Built-in: native (execute the entry), python (python3), R (Rscript),
// shell (sh), java (java -jar). Anything else containing "{entry}" is a
// custom command template, split into words like a shell would (single and
// double quotes, backslash), never run through a shell.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pesc/pesc.h"

namespace pesc {

struct Domain {
  std::string name;                 // "python", or the template text for a custom domain
  std::vector<std::string> words;   // e.g. {"python3", "{entry}"}; words[0] is the program
};

// Unknown names give an InvalidArgument error listing the built-ins and how
// to write a template.
absl::StatusOr<Domain> parse_domain(std::string_view text);

// The built-in domains' names: native, python, R, shell, java.
std::vector<std::string> builtin_domain_names();

// domain_for_file() is in the public API (pesc/pesc.h).

// Resolves each domain's program to an absolute path once and remembers it.
// Overrides (`python=/usr/bin/python3`) take precedence over PATH. Thread-safe.
class InterpreterTable {
 public:
  explicit InterpreterTable(std::map<std::string, std::string> overrides = {});

  // The argv that starts `entry` (an absolute path) in `domain`, without the
  // PESC flags. NotFound when the program is on no PATH entry.
  absl::StatusOr<std::vector<std::string>> command_for(const Domain& domain, const std::string& entry);

 private:
  absl::StatusOr<std::string> resolve(const std::string& program);
  std::map<std::string, std::string> overrides_;
  absl::Mutex mutex_;
  std::map<std::string, std::string> resolved_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace pesc

#endif  // PESC_EXECUTOR_DOMAIN_H_
