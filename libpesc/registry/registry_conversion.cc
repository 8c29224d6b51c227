#include "registry/registry_conversion.h"

#include "ledger/ledger_conversion.h"

namespace pesc {

WorkerRegistration from_proto(const v1::RegisterWorker& proto) {
  WorkerRegistration registration{
      .worker_id = proto.worker_id(),
      .host = proto.host(),
      .slots = proto.slots(),
      .attempts_in_hand = {proto.attempts_in_hand().begin(), proto.attempts_in_hand().end()},
      .rooms = {proto.rooms().begin(), proto.rooms().end()},
      .paused_reason = proto.paused_reason(),
      .end_unix_ms = proto.end_unix_ms(),
      .version = proto.version(),
      .domains = {proto.domains().begin(), proto.domains().end()}};
  for (const v1::Gpu& gpu : proto.gpus()) registration.gpus.push_back(from_proto(gpu));
  for (const v1::HeldGpus& held : proto.held_gpus()) {
    registration.held_gpus[held.attempt_id()].assign(held.gpus().begin(), held.gpus().end());
  }
  for (const v1::UnavailableDomain& domain : proto.unavailable_domains()) {
    registration.unavailable_domains[domain.domain()] = domain.why();
  }
  return registration;
}

WorkerHeartbeat from_proto(const v1::Heartbeat& heartbeat) {
  return WorkerHeartbeat{
      .paused_reason = heartbeat.paused_reason(),
      .throttled_reason = heartbeat.throttled_reason(),
      .returned_attempts = {heartbeat.returned_attempts().begin(), heartbeat.returned_attempts().end()},
      .host_cpu_percent = heartbeat.host_cpu_percent()};
}

v1::Registered to_proto(const RegistrationAnswer& answer) {
  v1::Registered registered;
  registered.set_heartbeat_ms(answer.heartbeat_ms);
  registered.set_idle_keepalive_ms(answer.idle_keepalive_ms);
  registered.set_state_dir(answer.state_dir);
  *registered.mutable_stale_attempts() = {answer.stale_attempts.begin(), answer.stale_attempts.end()};
  return registered;
}

v1::WorkerInfo to_proto(const WorkerView& worker) {
  v1::WorkerInfo info = to_proto(worker.record);
  info.set_online(worker.online);
  info.set_running(worker.running);
  info.set_quarantined(worker.quarantined);
  info.set_paused(worker.paused);
  info.set_throttled(worker.throttled);
  *info.mutable_rooms() = {worker.rooms.begin(), worker.rooms.end()};
  for (const WorkerGpu& gpu : worker.gpus) *info.add_gpus() = to_proto(gpu);
  for (const auto& [domain, why] : worker.unavailable_domains) {
    v1::UnavailableDomain& unavailable = *info.add_unavailable_domains();
    unavailable.set_domain(domain);
    unavailable.set_why(why);
  }
  info.set_end_unix_ms(worker.end_unix_ms);
  info.set_version(worker.version);
  info.set_host_cpu_percent(worker.host_cpu_percent);
  *info.mutable_domains() = {worker.domains.begin(), worker.domains.end()};
  return info;
}

std::vector<v1::WorkerInfo> to_proto(const std::vector<WorkerView>& workers) {
  std::vector<v1::WorkerInfo> infos;
  infos.reserve(workers.size());
  for (const WorkerView& worker : workers) infos.push_back(to_proto(worker));
  return infos;
}

v1::Assignment to_proto(const AttemptOrder& order) {
  v1::Assignment assignment;
  assignment.set_attempt_id(order.attempt_id);
  assignment.set_job_id(order.job_id);
  assignment.set_rank(order.rank);
  if (order.rank_count > 1) assignment.set_rank_count(order.rank_count);
  *assignment.mutable_gpus() = {order.gpus.begin(), order.gpus.end()};
  if (order.checkpoint) *assignment.mutable_checkpoint() = to_proto(*order.checkpoint);
  return assignment;
}

v1::StartGang to_proto(const GangStart& start) {
  v1::StartGang message;
  message.set_master_addr(start.master_addr);
  message.set_master_port(start.master_port);
  *message.mutable_attempt_ids() = {start.attempt_ids.begin(), start.attempt_ids.end()};
  return message;
}

v1::JobDescription description_for(const std::string& job_id, const JobSpec& spec) {
  v1::JobDescription job;
  job.set_job_id(job_id);
  job.set_world_size(spec.repetitions);
  job.set_domain(spec.domain);
  job.set_process_kind(process_kind_of(spec));
  *job.mutable_process() = to_proto(spec.process);
  job.set_entry(spec.options.entry);
  *job.mutable_parameters() = {spec.parameters.begin(), spec.parameters.end()};
  job.set_timeout_ms(spec.options.timeout.count());
  job.set_checkpoint_interval_ms(spec.options.checkpoint_interval.count());
  job.set_warm_runner(spec.options.warm_runner);
  for (const SharedInput& shared : spec.shared) *job.add_shared() = to_proto(shared);
  *job.mutable_limits() = to_proto(spec.options.limits);
  // A gang's ranks meet over the network.
  job.set_network(spec.options.network || spec.options.parallel);
  job.set_gang(spec.options.parallel);
  if (spec.options.seed) job.set_seed(*spec.options.seed);
  return job;
}

}  // namespace pesc
