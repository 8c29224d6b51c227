#include "pool/pool_conversion.h"

namespace pesc {

PoolSpec from_proto(const v1::PoolSpec& spec) {
  return PoolSpec{.name = spec.name(),
                  .batch_system = spec.batch_system(),
                  .partition = spec.partition(),
                  .time_limit = std::chrono::seconds(spec.time_limit_s()),
                  .max_workers = spec.max_workers(),
                  .slots_per_worker = spec.slots_per_worker(),
                  .idle_timeout = std::chrono::seconds(spec.idle_timeout_s()),
                  .submit_args = {spec.submit_args().begin(), spec.submit_args().end()},
                  .worker_args = {spec.worker_args().begin(), spec.worker_args().end()},
                  .batch_template = spec.batch_template(),
                  .batch_template_file = spec.batch_template_file()};
}

v1::PoolSpec to_proto(const PoolSpec& spec) {
  v1::PoolSpec proto;
  proto.set_name(spec.name);
  proto.set_batch_system(spec.batch_system);
  proto.set_partition(spec.partition);
  proto.set_time_limit_s(spec.time_limit.count());
  proto.set_max_workers(spec.max_workers);
  proto.set_slots_per_worker(spec.slots_per_worker);
  proto.set_idle_timeout_s(spec.idle_timeout.count());
  *proto.mutable_submit_args() = {spec.submit_args.begin(), spec.submit_args.end()};
  *proto.mutable_worker_args() = {spec.worker_args.begin(), spec.worker_args.end()};
  proto.set_batch_template(spec.batch_template);
  proto.set_batch_template_file(spec.batch_template_file);
  return proto;
}

v1::PoolStatus to_proto(const PoolStatus& status) {
  v1::PoolStatus proto;
  *proto.mutable_spec() = to_proto(status.spec);
  proto.set_pilots_pending(status.pilots_pending);
  proto.set_pilots_running(status.pilots_running);
  proto.set_pilots_submitted(status.pilots_submitted);
  proto.set_paused(status.paused);
  proto.set_last_failure(status.last_failure);
  proto.set_pending_reason(status.pending_reason);
  return proto;
}

}  // namespace pesc
