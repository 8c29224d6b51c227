#include "http/json_views.h"

#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pesc/pesc.h"

namespace pesc::http {
namespace {

using nlohmann::json;

json seconds(int64_t unix_ms) { return unix_ms == 0 ? json(nullptr) : json(static_cast<double>(unix_ms) / 1000.0); }

std::string failure_class_name(v1::FailureClass failure) {
  if (failure == v1::FAILURE_CLASS_UNSPECIFIED) return "";
  std::string name = v1::FailureClass_Name(failure);
  return absl::AsciiStrToLower(name.substr(std::string_view("FAILURE_CLASS_").size()));
}

std::string worker_state_name(const v1::WorkerInfo& worker) {
  if (!worker.online()) return "lost";
  if (!worker.quarantined().empty()) return "quarantined";
  if (!worker.paused().empty()) return "paused";
  return "online";
}

std::string worker_reason(const v1::WorkerInfo& worker) {
  if (!worker.quarantined().empty()) return worker.quarantined();
  if (!worker.paused().empty()) return worker.paused();
  return worker.throttled();
}

template <typename Container>
json strings(const Container& values) {
  json list = json::array();
  for (const auto& value : values) list.push_back(value);
  return list;
}

}  // namespace

std::string job_state_name(const v1::JobInfo& job) {
  switch (job.state()) {
    case v1::JOB_STATE_RUNNING: {
      const v1::JobProgress& progress = job.progress();
      const bool started = progress.running() + progress.succeeded() + progress.failed() + progress.cancelled() > 0;
      return started ? "running" : "queued";
    }
    case v1::JOB_STATE_FINISHED: return job.progress().failed() > 0 ? "failed" : "done";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    case v1::JOB_STATE_FAILED: return "failed";
    default: return "unknown";
  }
}

std::string rank_state_name(v1::RankState state) {
  switch (state) {
    case v1::RANK_STATE_PENDING: return "queued";
    case v1::RANK_STATE_RUNNING: return "running";
    case v1::RANK_STATE_SUCCEEDED: return "done";
    case v1::RANK_STATE_FAILED: return "failed";
    case v1::RANK_STATE_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

absl::StatusOr<v1::RankState> rank_state_named(const std::string& name) {
  for (v1::RankState state : {v1::RANK_STATE_PENDING, v1::RANK_STATE_RUNNING, v1::RANK_STATE_SUCCEEDED,
                              v1::RANK_STATE_FAILED, v1::RANK_STATE_CANCELLED}) {
    if (rank_state_name(state) == name) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("?status= takes queued, running, done, failed or cancelled, not \"", name, "\""));
}

json job_json(const v1::JobInfo& job) {
  const v1::JobProgress& progress = job.progress();
  return {
      {"id", job.id()},
      {"name", job.spec().name()},
      {"owner", job.spec().user()},
      {"state", job_state_name(job)},
      {"waiting_reason", progress.waiting()},
      {"failure", job.failure()},
      {"repetitions", progress.total()},
      {"done", progress.succeeded()},
      {"failed", progress.failed()},
      {"cancelled", progress.cancelled()},
      {"running", progress.running()},
      {"queued", progress.pending() + progress.queued_at_workers()},
      {"submitted_at", seconds(job.created_unix_ms())},
      {"finished_at", seconds(job.finished_unix_ms())},
  };
}

json worker_json(const v1::WorkerInfo& worker) {
  json gpus = json::array();
  for (const v1::Gpu& gpu : worker.gpus()) {
    gpus.push_back({{"index", gpu.index()},
                    {"name", gpu.name()},
                    {"memory_bytes", gpu.memory_bytes()},
                    {"compute_capability", gpu.compute_capability()}});
  }
  json unavailable = json::array();
  for (const v1::UnavailableDomain& domain : worker.unavailable_domains()) {
    unavailable.push_back({{"domain", domain.domain()}, {"why", domain.why()}});
  }
  const std::string reason = worker_reason(worker);
  return {
      {"id", worker.id()},
      {"host", worker.host()},
      {"state", worker_state_name(worker)},
      {"reason", reason},
      {"throttled", worker.throttled()},
      {"slots", worker.slots()},
      {"busy", worker.running()},
      {"ranks_done", worker.ranks_done()},
      {"rooms", strings(worker.rooms())},
      {"gpus", gpus},
      {"unavailable_domains", unavailable},
      {"owner_present", worker.paused().find("owner") != std::string::npos},
      {"disk_full", reason.find("disk") != std::string::npos},
      {"last_seen", seconds(worker.last_seen_unix_ms())},
  };
}

json rank_json(const v1::RankResult& rank) {
  const bool ended = rank.end_unix_ms() > 0;
  return {
      {"rank", rank.rank()},
      {"status", rank_state_name(rank.state())},
      {"failure_class", failure_class_name(rank.failure_class())},
      {"worker", rank.worker()},
      {"attempts", rank.attempts()},
      {"start", seconds(rank.start_unix_ms())},
      {"end", seconds(rank.end_unix_ms())},
      {"duration_s", ended ? json(static_cast<double>(rank.end_unix_ms() - rank.start_unix_ms()) / 1000.0) : json()},
      {"cpu_s", ended ? json(static_cast<double>(rank.cpu_ms()) / 1000.0) : json()},
      {"max_rss_kb", ended ? json(rank.max_rss_kb()) : json()},
      {"exit_code", rank.exit_code()},
      {"signal", rank.signal()},
      {"timed_out", rank.timed_out()},
      {"limit_exceeded", rank.limit_exceeded()},
      {"error", rank.error()},
  };
}

json spec_json(const v1::JobSpec& spec) {
  json out = {
      {"domain", spec.domain()},
      {"entry", spec.entry()},
      {"repetitions", spec.repetitions()},
      {"params", strings(spec.parameters())},
      {"name", spec.name()},
      {"user", spec.user()},
      {"rooms", strings(spec.rooms())},
      {"gpus", spec.gpus_per_rank()},
      {"min_capability", spec.min_capability()},
      {"max_attempts", spec.max_attempts()},
      {"timeout_s", static_cast<double>(spec.timeout_ms()) / 1000.0},
      {"checkpoint_interval_s", static_cast<double>(spec.checkpoint_interval_ms()) / 1000.0},
      {"same_machine", spec.same_machine()},
      {"parallel", spec.parallel()},
      {"network", spec.network()},
      {"no_duplicates", spec.no_duplicates()},
      {"notify", strings(spec.notify())},
      {"memory", spec.limits().memory_bytes()},
      {"cpu_time", static_cast<double>(spec.limits().cpu_ms()) / 1000.0},
      {"open_files", spec.limits().open_files()},
      {"processes", spec.limits().processes()},
      {"output_size", spec.limits().output_bytes()},
  };
  json shared = json::array();
  for (const v1::SharedFile& file : spec.shared()) shared.push_back(file.name());
  out["shared"] = shared;
  out["seed"] = spec.has_seed() ? json(spec.seed()) : json();
  return out;
}

absl::StatusOr<v1::JobSpec> spec_from_json(const json& in) {
  if (!in.is_object()) return absl::InvalidArgumentError("the \"spec\" part must be a JSON object");
  v1::JobSpec spec;
  using Setter = std::function<void(const json&)>;
  auto seconds_to_ms = [](const json& value) { return static_cast<int64_t>(value.get<double>() * 1000.0); };
  // "512M" as `pesc run --memory` takes it, or a number of bytes.
  auto bytes = [](const json& value) -> int64_t {
    return value.is_string() ? parse_size(value.get<std::string>()) : value.get<int64_t>();
  };
  auto string_list = [](const json& value, auto* field) {
    for (const json& item : value) field->Add(item.get<std::string>());
  };
  const std::map<std::string, Setter> setters = {
      {"domain", [&](const json& v) { spec.set_domain(v.get<std::string>()); }},
      {"entry", [&](const json& v) { spec.set_entry(v.get<std::string>()); }},
      {"repetitions", [&](const json& v) { spec.set_repetitions(v.get<int32_t>()); }},
      {"params", [&](const json& v) { string_list(v, spec.mutable_parameters()); }},
      {"name", [&](const json& v) { spec.set_name(v.get<std::string>()); }},
      {"rooms", [&](const json& v) { string_list(v, spec.mutable_rooms()); }},
      {"room", [&](const json& v) { string_list(v, spec.mutable_rooms()); }},
      {"gpus", [&](const json& v) { spec.set_gpus_per_rank(v.get<int32_t>()); }},
      {"min_capability", [&](const json& v) { spec.set_min_capability(v.get<double>()); }},
      {"max_attempts", [&](const json& v) { spec.set_max_attempts(v.get<int32_t>()); }},
      {"timeout", [&](const json& v) { spec.set_timeout_ms(seconds_to_ms(v)); }},
      {"timeout_s", [&](const json& v) { spec.set_timeout_ms(seconds_to_ms(v)); }},
      {"checkpoint_interval", [&](const json& v) { spec.set_checkpoint_interval_ms(seconds_to_ms(v)); }},
      {"checkpoint_interval_s", [&](const json& v) { spec.set_checkpoint_interval_ms(seconds_to_ms(v)); }},
      {"same_machine", [&](const json& v) { spec.set_same_machine(v.get<bool>()); }},
      {"parallel", [&](const json& v) { spec.set_parallel(v.get<bool>()); }},
      {"network", [&](const json& v) { spec.set_network(v.get<bool>()); }},
      {"no_duplicates", [&](const json& v) { spec.set_no_duplicates(v.get<bool>()); }},
      {"seed", [&](const json& v) { if (!v.is_null()) spec.set_seed(v.get<uint64_t>()); }},
      {"notify", [&](const json& v) { string_list(v, spec.mutable_notify()); }},
      {"memory", [&](const json& v) { spec.mutable_limits()->set_memory_bytes(bytes(v)); }},
      {"cpu_time", [&](const json& v) { spec.mutable_limits()->set_cpu_ms(seconds_to_ms(v)); }},
      {"open_files", [&](const json& v) { spec.mutable_limits()->set_open_files(v.get<int32_t>()); }},
      {"processes", [&](const json& v) { spec.mutable_limits()->set_processes(v.get<int32_t>()); }},
      {"output_size", [&](const json& v) { spec.mutable_limits()->set_output_bytes(bytes(v)); }},
  };
  for (const auto& [key, value] : in.items()) {
    auto setter = setters.find(key);
    if (setter == setters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("the spec has no option \"", key,
                                                     "\": it takes pesc run's long options with _ for -"));
    }
    try {
      setter->second(value);
    } catch (const json::exception& wrong_type) {
      return absl::InvalidArgumentError(
          absl::StrCat("the spec's \"", key, "\" has the wrong type (", value.dump(), "): ", wrong_type.what()));
    } catch (const Error& wrong_value) {
      return absl::InvalidArgumentError(absl::StrCat("the spec's \"", key, "\": ", wrong_value.what()));
    }
  }
  return spec;
}

}  // namespace pesc::http
