// The farm: its workers.
#include "coordinator/farm_state.h"
#include "http/api.h"
#include "http/json_views.h"
#include "registry/registry_conversion.h"

namespace pesc::http {

void add_farm_routes(Api& api) {
  api.get("/api/v1/workers", Needs::kUser, [&api](Call& call) -> absl::Status {
    auto workers = api.core().state.workers();
    if (!workers.ok()) return workers.status();
    nlohmann::json list = nlohmann::json::array();
    for (const v1::WorkerInfo& worker : to_proto(*workers)) list.push_back(worker_json(worker));
    reply_json(call.response, {{"workers", list}});
    return absl::OkStatus();
  });
}

}  // namespace pesc::http
