#include "transport/job_options.h"

namespace pesc {

void set_job_options(const MapOptions& options, v1::JobSpec& spec) {
  spec.set_max_attempts(options.max_attempts);
  spec.set_timeout_ms(options.timeout.count());
  spec.set_checkpoint_interval_ms(options.checkpoint_interval.count());
  spec.set_warm_runner(options.warm_runner);
  for (const std::string& room : options.rooms) spec.add_rooms(room);
  spec.set_same_machine(options.same_machine);
  v1::RankLimits& limits = *spec.mutable_limits();
  limits.set_memory_bytes(options.limits.memory_bytes);
  limits.set_cpu_ms(options.limits.cpu_time.count());
  limits.set_open_files(options.limits.open_files);
  limits.set_processes(options.limits.processes);
  limits.set_output_bytes(options.limits.output_bytes);
  spec.set_network(options.network);
  spec.set_parallel(options.parallel);
  spec.set_no_duplicates(options.no_duplicates);
  spec.set_gpus_per_rank(options.gpus);
  spec.set_min_capability(options.min_capability);
  if (options.seed) spec.set_seed(*options.seed);
  for (const std::string& target : options.notify) spec.add_notify(target);
}

}  // namespace pesc
