#include "http/json_views.h"

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pesc/pesc.h"
#include "transport/job_options.h"
#include "transport/public_conversion.h"

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

// The built-in domains it can run (custom command templates run anywhere).
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
      {"version", worker.version()},
      {"cpu_percent", worker.online() && worker.host_cpu_percent() >= 0 ? json(worker.host_cpu_percent()) : json()},
      {"domains", strings(worker.domains())},
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
      {"duration_s", ended ? json(static_cast<double>(run_time_ms(rank_result_of(rank))) / 1000.0) : json()},
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

namespace {

// A JSON value as the texts map_options_from reads: a list gives one text
// per item; numbers as JSON writes them (a 64-bit seed stays exact).
std::vector<std::string> option_texts(const json& value) {
  if (value.is_array()) {
    std::vector<std::string> texts;
    for (const json& item : value) {
      for (std::string& text : option_texts(item)) texts.push_back(std::move(text));
    }
    return texts;
  }
  if (value.is_string()) return {value.get<std::string>()};
  return {value.dump()};
}

// Other names the pages and curl users give options.
std::string option_name(const std::string& key) {
  static const std::map<std::string, std::string> kAliases = {
      {"room", "rooms"}, {"timeout_s", "timeout"}, {"checkpoint_interval_s", "checkpoint_interval"},
      {"cpu_time_s", "cpu_time"}};
  auto alias = kAliases.find(key);
  return alias == kAliases.end() ? key : alias->second;
}

}  // namespace

absl::StatusOr<v1::JobSpec> spec_from_json(const json& in) {
  if (!in.is_object()) return absl::InvalidArgumentError("the \"spec\" part must be a JSON object");
  v1::JobSpec spec;
  NamedOptions named;
  try {
    for (const auto& [key, value] : in.items()) {
      if (key == "domain") {
        spec.set_domain(value.get<std::string>());
      } else if (key == "repetitions") {
        spec.set_repetitions(value.get<int32_t>());
      } else if (key == "params") {
        for (std::string& parameter : option_texts(value)) spec.add_parameters(std::move(parameter));
      } else if (key == "shared") {
        return absl::InvalidArgumentError("send shared files as \"shared\" parts of the form, not in the spec");
      } else if (!value.is_null()) {
        named[option_name(key)] = option_texts(value);
      }
    }
  } catch (const json::exception& wrong_type) {
    return absl::InvalidArgumentError(absl::StrCat("the spec's domain, repetitions or params have the wrong type: ",
                                                   wrong_type.what()));
  }
  // pesc run's options, read and checked by the table every client uses.
  MapOptions options;
  try {
    options = map_options_from(named);
  } catch (const Error& wrong) {
    return absl::InvalidArgumentError(absl::StrCat("the spec's ", wrong.what()));
  }
  set_job_options(options, spec);
  if (!options.entry.empty()) spec.set_entry(options.entry);
  if (!options.name.empty()) spec.set_name(options.name);
  return spec;
}

}  // namespace pesc::http
