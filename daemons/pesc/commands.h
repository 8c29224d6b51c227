#ifndef PESC_DAEMONS_PESC_COMMANDS_H_
#define PESC_DAEMONS_PESC_COMMANDS_H_

#include <string>
#include <vector>

#include "pesc/pesc.h"

namespace pesc::cli {

// Exit codes of the `pesc` command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRanksFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFarmError = 3;
inline constexpr int kExitInterrupted = 130;

// `pesc run`'s words and flags; the job's options go straight to MapOptions.
struct RunArguments {
  std::string process;
  std::string domain;  // empty: from the file name
  int repetitions = 1;
  std::vector<std::string> parameters;
  std::string out_dir;
  bool detach = false;
  MapOptions options;
};

struct Target {
  std::string coordinator;  // empty: PESC_COORDINATOR, then embedded
  std::string state_dir;
  int slots = 0;
  // A coordinator's token and TLS files; empty: the library's defaults.
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

int run(const Target& target, const RunArguments& arguments);
int status(const Target& target, const std::string& job_id);
int wait(const Target& target, const std::string& job_id);
int cancel(const Target& target, const std::string& job_id);
int remove(const Target& target, const std::string& job_id);
int results(const Target& target, const std::string& job_id, const std::string& out_dir);
// Waits for the job, prints its report and, with `svg_file`, writes its timeline there.
int report(const Target& target, const std::string& job_id, const std::string& svg_file);
int jobs(const Target& target);
// Runs a finished job's failed ranks (or `ranks`, e.g. "3,7-9") again, then follows it as wait does.
int retry(const Target& target, const std::string& job_id, const std::string& ranks);
// Prints a rank's output.txt; `follow`: as it grows, until the rank ends.
int logs(const Target& target, const std::string& job_id, int rank, bool follow);
int workers(const Target& target);

}  // namespace pesc::cli

#endif  // PESC_DAEMONS_PESC_COMMANDS_H_
