#include "ledger/ledger_conversion.h"

#include <chrono>
#include <utility>

namespace pesc {
namespace {

template <typename Repeated>
std::vector<std::string> strings_of(const Repeated& repeated) {
  return std::vector<std::string>(repeated.begin(), repeated.end());
}

RankLimits from_proto(const v1::RankLimits& limits) {
  return RankLimits{.memory_bytes = limits.memory_bytes(),
                    .cpu_time = std::chrono::milliseconds(limits.cpu_ms()),
                    .open_files = limits.open_files(),
                    .processes = limits.processes(),
                    .output_bytes = limits.output_bytes()};
}

MapOptions options_of(const v1::JobSpec& spec) {
  MapOptions options;
  options.entry = spec.entry();
  options.name = spec.name();
  options.max_attempts = spec.max_attempts();
  options.timeout = std::chrono::milliseconds(spec.timeout_ms());
  options.checkpoint_interval = std::chrono::milliseconds(spec.checkpoint_interval_ms());
  options.warm_runner = spec.warm_runner();
  options.rooms = strings_of(spec.rooms());
  options.same_machine = spec.same_machine();
  options.limits = from_proto(spec.limits());
  options.network = spec.network();
  options.parallel = spec.parallel();
  options.no_duplicates = spec.no_duplicates();
  options.gpus = spec.gpus_per_rank();
  options.min_capability = spec.min_capability();
  if (spec.has_seed()) options.seed = spec.seed();
  options.notify = strings_of(spec.notify());
  return options;
}

void add_options(const MapOptions& options, v1::JobSpec& spec) {
  spec.set_entry(options.entry);
  spec.set_name(options.name);
  spec.set_max_attempts(options.max_attempts);
  spec.set_timeout_ms(options.timeout.count());
  spec.set_checkpoint_interval_ms(options.checkpoint_interval.count());
  spec.set_warm_runner(options.warm_runner);
  *spec.mutable_rooms() = {options.rooms.begin(), options.rooms.end()};
  spec.set_same_machine(options.same_machine);
  *spec.mutable_limits() = to_proto(options.limits);
  spec.set_network(options.network);
  spec.set_parallel(options.parallel);
  spec.set_no_duplicates(options.no_duplicates);
  spec.set_gpus_per_rank(options.gpus);
  spec.set_min_capability(options.min_capability);
  if (options.seed) spec.set_seed(*options.seed);
  *spec.mutable_notify() = {options.notify.begin(), options.notify.end()};
}

}  // namespace

BlobId from_proto(const v1::BlobRef& blob) { return BlobId{.sha256 = blob.sha256(), .size = blob.size()}; }

v1::BlobRef to_proto(const BlobId& blob) {
  v1::BlobRef proto;
  proto.set_sha256(blob.sha256);
  proto.set_size(blob.size);
  return proto;
}

v1::SharedFile to_proto(const SharedInput& shared) {
  v1::SharedFile file;
  file.set_name(shared.name);
  if (shared.url.empty()) {
    *file.mutable_blob() = to_proto(shared.blob);
  } else {
    file.set_url(shared.url);
  }
  return file;
}

v1::RankLimits to_proto(const RankLimits& limits) {
  v1::RankLimits proto;
  proto.set_memory_bytes(limits.memory_bytes);
  proto.set_cpu_ms(limits.cpu_time.count());
  proto.set_open_files(limits.open_files);
  proto.set_processes(limits.processes);
  proto.set_output_bytes(limits.output_bytes);
  return proto;
}

v1::ProcessKind process_kind_of(const JobSpec& spec) {
  return spec.archive ? v1::PROCESS_KIND_ARCHIVE : v1::PROCESS_KIND_FILE;
}

JobSpec from_proto(const v1::JobSpec& spec) {
  JobSpec job{.domain = spec.domain(),
              .process = from_proto(spec.process()),
              .archive = spec.process_kind() != v1::PROCESS_KIND_FILE,
              .repetitions = spec.repetitions(),
              .parameters = strings_of(spec.parameters()),
              .user = spec.user(),
              .options = options_of(spec)};
  for (const v1::SharedFile& shared : spec.shared()) {
    job.shared.push_back({.name = shared.name(), .blob = from_proto(shared.blob()), .url = shared.url()});
  }
  return job;
}

v1::JobSpec to_proto(const JobSpec& job) {
  v1::JobSpec spec;
  spec.set_domain(job.domain);
  spec.set_process_kind(process_kind_of(job));
  *spec.mutable_process() = to_proto(job.process);
  spec.set_repetitions(job.repetitions);
  *spec.mutable_parameters() = {job.parameters.begin(), job.parameters.end()};
  spec.set_user(job.user);
  for (const SharedInput& shared : job.shared) *spec.add_shared() = to_proto(shared);
  add_options(job.options, spec);
  return spec;
}

}  // namespace pesc
