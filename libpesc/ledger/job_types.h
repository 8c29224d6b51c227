#ifndef PESC_LEDGER_JOB_TYPES_H_
#define PESC_LEDGER_JOB_TYPES_H_

// What the coordinator's core (the ledger, the dispatcher, FarmState) keeps
// of jobs, as plain C++: the services turn the protocol's messages into
// these and back in ledger/ledger_conversion.h alone, and SqliteJobStore
// stores them in the protocol's bytes, so nothing in between reads a
// generated type.

#include <string>
#include <vector>

#include "common/blob_id.h"
#include "pesc/pesc.h"

namespace pesc {

// A job as submitted, fixed from then on: what it runs, how many ranks, for
// whom, and the user's options. Its process and shared files are blobs the
// coordinator holds (or, for shared files, URLs the workers fetch).
struct JobSpec {
  // A built-in domain name (native, python, R, shell, java) or a command
  // template containing {entry}.
  std::string domain;
  BlobId process;
  // The process is an archive unpacked into every rank's app_dir; else one
  // file, its own entry point.
  bool archive = false;
  int repetitions = 0;
  // The user's values, identical for every rank, passed byte for byte.
  std::vector<std::string> parameters;
  std::string user;
  std::vector<SharedInput> shared;
  // The rest, as the user gave them; options.shared stays empty (`shared`
  // holds them uploaded).
  MapOptions options;
};

}  // namespace pesc

#endif  // PESC_LEDGER_JOB_TYPES_H_
