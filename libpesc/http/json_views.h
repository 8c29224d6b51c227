#ifndef PESC_HTTP_JSON_VIEWS_H_
#define PESC_HTTP_JSON_VIEWS_H_

// The REST API's JSON shapes (doc: the README's "Web dashboard and REST
// API" section) from and to the protocol's messages. Times are UNIX seconds.

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc::http {

nlohmann::json job_json(const v1::JobInfo& job);
nlohmann::json worker_json(const v1::WorkerInfo& worker);
nlohmann::json rank_json(const v1::RankResult& rank);
nlohmann::json spec_json(const v1::JobSpec& spec);

// "queued|running|done|failed|cancelled" of a job and of a rank.
std::string job_state_name(const v1::JobInfo& job);
std::string rank_state_name(v1::RankState state);
// The inverse for ?status= filters; InvalidArgument for another word.
absl::StatusOr<v1::RankState> rank_state_named(const std::string& name);

// A submit form's "spec" part: domain, repetitions, params, and the options
// of `pesc run` by their long names with '_' for '-' (map_options_from reads
// them, as for the bindings). Unknown names and unreadable values are
// refused; what the values may be is check_job_spec's to say.
absl::StatusOr<v1::JobSpec> spec_from_json(const nlohmann::json& json);

}  // namespace pesc::http

#endif  // PESC_HTTP_JSON_VIEWS_H_
