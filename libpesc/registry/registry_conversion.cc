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

}  // namespace pesc
