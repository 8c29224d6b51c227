#ifndef PESC_TRANSPORT_JOB_OPTIONS_H_
#define PESC_TRANSPORT_JOB_OPTIONS_H_

// A job's MapOptions onto the JobSpec a coordinator receives: the library's
// client and the web's submit send options this one way. The process, its
// entry, the name, shared files and the user are each caller's to set.
// Header only: the coordinator's ledger, which links no transport, stores
// specs this way too (ledger/ledger_conversion.cc).

#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"
#include "transport/public_conversion.h"

namespace pesc {

inline void set_job_options(const MapOptions& options, v1::JobSpec& spec) {
  spec.set_max_attempts(options.max_attempts);
  spec.set_timeout_ms(options.timeout.count());
  spec.set_checkpoint_interval_ms(options.checkpoint_interval.count());
  spec.set_warm_runner(options.warm_runner);
  for (const std::string& room : options.rooms) spec.add_rooms(room);
  spec.set_same_machine(options.same_machine);
  *spec.mutable_limits() = to_proto(options.limits);
  spec.set_network(options.network);
  spec.set_parallel(options.parallel);
  spec.set_no_duplicates(options.no_duplicates);
  spec.set_gpus_per_rank(options.gpus);
  spec.set_min_capability(options.min_capability);
  if (options.seed) spec.set_seed(*options.seed);
  for (const std::string& target : options.notify) spec.add_notify(target);
}

}  // namespace pesc

#endif  // PESC_TRANSPORT_JOB_OPTIONS_H_
