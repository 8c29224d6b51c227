// GET /metrics: the farm in Prometheus's text format.
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/farm_state.h"
#include "http/api.h"
#include "http/json_views.h"
#include "ledger/ledger_conversion.h"
#include "registry/registry_conversion.h"

namespace pesc::http {
namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void by_label(std::string& out, const char* name, const char* label, const std::map<std::string, int64_t>& values) {
  for (const auto& [value, count] : values) absl::StrAppend(&out, name, "{", label, "=\"", value, "\"} ", count, "\n");
}

absl::StatusOr<std::string> metrics_text(FarmState& state) {
  auto records = state.jobs();
  if (!records.ok()) return records.status();
  const std::vector<v1::JobInfo> jobs = to_proto(*records);
  auto workers = state.workers();
  if (!workers.ok()) return workers.status();
  std::string out;
  std::map<std::string, int64_t> ranks = {{"queued", 0}, {"running", 0}, {"done", 0}, {"failed", 0}, {"cancelled", 0}};
  std::map<std::string, int64_t> job_states;
  for (const v1::JobInfo& job : jobs) {
    const v1::JobProgress& progress = job.progress();
    ranks["queued"] += progress.pending() + progress.queued_at_workers();
    ranks["running"] += progress.running();
    ranks["done"] += progress.succeeded();
    ranks["failed"] += progress.failed();
    ranks["cancelled"] += progress.cancelled();
    ++job_states[job_state_name(job)];
  }
  family(out, "pesc_ranks", "gauge", "Ranks of the jobs the coordinator keeps, by state.");
  by_label(out, "pesc_ranks", "state", ranks);
  family(out, "pesc_jobs", "gauge", "Jobs the coordinator keeps, by state.");
  by_label(out, "pesc_jobs", "state", job_states);

  std::map<std::string, int64_t> worker_states = {{"online", 0}, {"paused", 0}, {"quarantined", 0}, {"lost", 0}};
  std::map<std::string, int64_t> slots = {{"busy", 0}, {"free", 0}};
  for (const v1::WorkerInfo& worker : to_proto(*workers)) {
    ++worker_states[worker_json(worker)["state"].get<std::string>()];
    if (!worker.online()) continue;
    slots["busy"] += worker.running();
    slots["free"] += std::max(0, worker.slots() - worker.running());
  }
  family(out, "pesc_workers", "gauge", "Workers the coordinator knows, by state.");
  by_label(out, "pesc_workers", "state", worker_states);
  family(out, "pesc_slots", "gauge", "Slots of connected workers, busy or free.");
  by_label(out, "pesc_slots", "state", slots);

  family(out, "pesc_dispatched_total", "counter", "Ranks sent to workers since the coordinator started.");
  absl::StrAppend(&out, "pesc_dispatched_total ", state.counters().ranks_dispatched.load(), "\n");
  family(out, "pesc_results_total", "counter", "Rank results recorded since the coordinator started.");
  absl::StrAppend(&out, "pesc_results_total ", state.counters().results_accepted.load(), "\n");

  const LatencyHistogram::Snapshot store = state.store_latency().snapshot();
  family(out, "pesc_store_seconds", "histogram", "Time of each call to the job store (SQLite).");
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    absl::StrAppend(&out, "pesc_store_seconds_bucket{le=\"", absl::StrFormat("%g", LatencyHistogram::kBounds[i]),
                    "\"} ", store.cumulative[i], "\n");
  }
  absl::StrAppend(&out, "pesc_store_seconds_bucket{le=\"+Inf\"} ", store.count, "\n");
  absl::StrAppend(&out, "pesc_store_seconds_sum ", absl::StrFormat("%.6f", store.sum_seconds), "\n");
  absl::StrAppend(&out, "pesc_store_seconds_count ", store.count, "\n");
  return out;
}

}  // namespace

void add_metrics_routes(Api& api) {
  // Anyone on this host may read them, as a Prometheus beside it does;
  // from elsewhere they need a token.
  api.open_get("/metrics", [&api](const httplib::Request& request, httplib::Response& response) {
    if (!is_loopback_host(request.remote_addr)) {
      std::optional<Session> session;
      if (auto caller = api.caller_of(request, Needs::kAnyone, &session); !caller.ok()) {
        return reply_error(response, caller.status());
      }
    }
    auto text = metrics_text(api.core().state);
    if (!text.ok()) return reply_error(response, text.status());
    response.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace pesc::http
