// A job's ranks: pages of them, one rank's output and files, the archives
// of a rank and of the whole job, the timeline and the speedup report.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "archive/tar_stream.h"
#include "http/api.h"
#include "http/job_ranks.h"
#include "http/json_views.h"
#include "ledger/ledger_conversion.h"

namespace pesc::http {
namespace {

using nlohmann::json;

// `R` of /ranks/R, within the job's ranks.
absl::StatusOr<v1::RankResult> rank_of(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  int rank = 0;
  if (!absl::SimpleAtoi(std::string(call.request.matches[2]), &rank) || rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat("a rank is a whole number from 0, not \"",
                                                   std::string(call.request.matches[2]), "\""));
  }
  return one_rank(api.core().state, *job_id, rank);
}

absl::Status list_ranks(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  auto offset = int_param(call.request, "offset", 0, 0, 1'000'000'000);
  if (!offset.ok()) return offset.status();
  auto limit = int_param(call.request, "limit", 100, 1, kRanksPerPage);
  if (!limit.ok()) return limit.status();
  std::optional<RankStatus> state;
  if (const std::string status = call.request.get_param_value("status"); !status.empty()) {
    auto named = rank_state_named(status);
    if (!named.ok()) return named.status();
    state = from_proto(*named);
  }
  auto page = api.core().state.ranks_page(*job_id, state, *offset, static_cast<int>(*limit));
  if (!page.ok()) return page.status();
  json ranks = json::array();
  for (const RankRecord& rank : page->ranks) ranks.push_back(rank_json(to_proto(rank)));
  reply_json(call.response, {{"total", page->total}, {"offset", *offset}, {"ranks", ranks}});
  return absl::OkStatus();
}

absl::Status get_rank(Api& api, Call& call) {
  auto rank = rank_of(api, call);
  if (!rank.ok()) return rank.status();
  json body = rank_json(*rank);
  json files = json::array();
  files.push_back({{"name", "output.txt"}, {"size", output_size(*rank)}});
  if (auto source = files_of(*rank, api.core().state.blobs())) {
    auto members = archive::list_members(*source);
    if (!members.ok()) return members.status();
    for (const archive::Member& member : *members) files.push_back({{"name", member.name}, {"size", member.size}});
  }
  body["files"] = files;
  reply_json(call.response, body);
  return absl::OkStatus();
}

absl::Status get_output(Api& api, Call& call) {
  auto rank = rank_of(api, call);
  if (!rank.ok()) return rank.status();
  std::string output;
  absl::Status read = send_output(*rank, api.core().state.blobs(), [&output](std::string_view bytes) {
    output.append(bytes);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  call.response.set_content(output, "text/plain; charset=utf-8");
  return absl::OkStatus();
}

absl::Status get_file(Api& api, Call& call) {
  auto rank = rank_of(api, call);
  if (!rank.ok()) return rank.status();
  const std::string name = call.request.matches[3];
  if (name == "output.txt") return get_output(api, call);
  auto source = files_of(*rank, api.core().state.blobs());
  if (!source) return absl::NotFoundError(absl::StrCat("rank ", rank->rank(), " left no file but output.txt"));
  auto bytes = archive::member_bytes(*source, name);
  if (!bytes.ok()) return bytes.status();
  call.response.set_header("Content-Disposition", "attachment");
  call.response.set_content(*bytes, "application/octet-stream");
  return absl::OkStatus();
}

// rank_R/output.txt and the rank's other files under rank_R/.
absl::Status add_rank(archive::TarGzStream& tar, const v1::RankResult& rank, const BlobStore& blobs) {
  const std::string dir = absl::StrCat("rank_", rank.rank());
  if (absl::Status begun = tar.begin_file(dir + "/output.txt", output_size(rank)); !begun.ok()) return begun;
  if (absl::Status sent = send_output(rank, blobs, [&tar](std::string_view bytes) { return tar.write(bytes); });
      !sent.ok()) {
    return sent;
  }
  if (auto source = files_of(rank, blobs)) return tar.add_members(*source, dir);
  return absl::OkStatus();
}

bool ended(const v1::RankResult& rank) { return rank.finish_seq() > 0; }

// The layout of `pesc results --out DIR`: output.txt (every ended rank's
// joined in rank order), then rank_R/ for each. The ranks are read twice, a
// page at a time: once for the joined file's size, once to send it, once
// more for the ranks' own files.
absl::Status write_job_archive(FarmState& state, const std::string& job_id, archive::TarGzStream& tar) {
  uint64_t joined_size = 0;
  absl::Status status = for_each_rank(state, job_id, [&](const v1::RankResult& rank) {
    if (ended(rank)) joined_size += output_size(rank);
    return absl::OkStatus();
  });
  if (status.ok()) status = tar.begin_file("output.txt", joined_size);
  if (status.ok()) {
    status = for_each_rank(state, job_id, [&](const v1::RankResult& rank) {
      if (!ended(rank)) return absl::OkStatus();
      return send_output(rank, state.blobs(), [&tar](std::string_view bytes) { return tar.write(bytes); });
    });
  }
  if (status.ok()) {
    status = for_each_rank(state, job_id, [&](const v1::RankResult& rank) {
      return ended(rank) ? add_rank(tar, rank, state.blobs()) : absl::OkStatus();
    });
  }
  return status.ok() ? tar.finish() : status;
}

// Streams a tar.gz made by `fill` as the response; an error half-way can
// only cut the stream short, and is logged.
void stream_archive(Call& call, const std::string& file_name,
                    std::function<absl::Status(archive::TarGzStream&)> fill) {
  call.response.set_header("Content-Disposition", absl::StrCat("attachment; filename=\"", file_name, "\""));
  call.response.set_chunked_content_provider(
      "application/gzip", [file_name, fill = std::move(fill)](size_t, httplib::DataSink& sink) {
        auto tar = archive::TarGzStream::open([&sink](std::string_view bytes) {
          return sink.write(bytes.data(), bytes.size());
        });
        absl::Status status = tar.ok() ? fill(**tar) : tar.status();
        if (!status.ok()) {
          if (status.code() != absl::StatusCode::kCancelled) {
            std::cerr << "pesc-coordinator: http: " << file_name << " was cut short: " << status.message() << std::endl;
          }
          return false;
        }
        sink.done();
        return true;
      });
}

absl::Status get_rank_archive(Api& api, Call& call) {
  auto rank = rank_of(api, call);
  if (!rank.ok()) return rank.status();
  const std::string job_id = call.request.matches[1];
  stream_archive(call, absl::StrCat(job_id, "-rank_", rank->rank(), ".tar.gz"),
                 [&api, rank = *std::move(rank)](archive::TarGzStream& tar) {
                   absl::Status added = add_rank(tar, rank, api.core().state.blobs());
                   return added.ok() ? tar.finish() : added;
                 });
  return absl::OkStatus();
}

absl::Status get_job_archive(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  stream_archive(call, *job_id + ".tar.gz", [&api, job_id = *job_id](archive::TarGzStream& tar) {
    return write_job_archive(api.core().state, job_id, tar);
  });
  return absl::OkStatus();
}

absl::StatusOr<JobReport> report(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  auto job = api.core().state.job(*job_id);
  if (!job.ok()) return job.status();
  return report_of(api.core().state, to_proto(*job));
}

// The words rank_json uses.
std::string api_status_name(RankStatus status) {
  switch (status) {
    case RankStatus::kSucceeded: return "done";
    case RankStatus::kPending: return "queued";
    default: return to_string(status);
  }
}

double seconds(std::chrono::milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

absl::Status get_timeline(Api& api, Call& call) {
  auto job_report = report(api, call);
  if (!job_report.ok()) return job_report.status();
  const double started = seconds(std::chrono::duration_cast<std::chrono::milliseconds>(
      job_report->started.time_since_epoch()));
  json slots = json::array();
  for (const WorkerReport& worker : job_report->workers) {
    for (int slot = 0; slot < worker.slots; ++slot) slots.push_back({{"worker", worker.worker}, {"slot", slot}});
  }
  // A big job has a span per rank: written straight to text, not held as
  // JSON objects first.
  std::vector<std::string> lane_fields;
  for (const json& lane : slots) {
    lane_fields.push_back(absl::StrCat("\"worker\":", lane["worker"].dump(), ",\"slot\":", lane["slot"].dump()));
  }
  std::string spans;
  for (const TimelineBar& bar : job_report->timeline) {
    absl::StrAppend(&spans, spans.empty() ? "" : ",", "{", lane_fields.at(static_cast<size_t>(bar.lane)),
                    ",\"lane\":", bar.lane, ",\"rank\":", bar.rank, ",\"start\":",
                    json(started + seconds(bar.start)).dump(), ",\"end\":", json(started + seconds(bar.end)).dump(),
                    ",\"status\":\"", api_status_name(bar.status), "\"}");
  }
  json paused = json::array();
  for (const PausedStretch& stretch : job_report->paused_stretches) {
    paused.push_back({{"first_lane", stretch.first_lane},
                      {"lanes", stretch.lanes},
                      {"start", started + seconds(stretch.start)},
                      {"end", started + seconds(stretch.end)},
                      {"reason", stretch.reason}});
  }
  std::string body = json{{"started", started},
                          {"wall_s", seconds(job_report->wall)},
                          {"speedup", job_report->speedup},
                          {"slots", slots},
                          {"paused", paused}}
                         .dump();
  body.pop_back();
  absl::StrAppend(&body, ",\"spans\":[", spans, "]}");
  call.response.set_header("Cache-Control", "no-store");
  call.response.set_content(body, "application/json");
  return absl::OkStatus();
}

absl::Status get_distribution(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  std::map<std::string, json> by_worker;
  absl::Status read = for_each_rank(api.core().state, *job_id, [&](const v1::RankResult& rank) {
    if (rank.worker().empty()) return absl::OkStatus();
    auto [entry, added] = by_worker.try_emplace(rank.worker(), json::array());
    entry->second.push_back(rank.rank());
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  json workers = json::array();
  for (auto& [worker, ranks] : by_worker) workers.push_back({{"worker", worker}, {"ranks", std::move(ranks)}});
  reply_json(call.response, {{"workers", workers}});
  return absl::OkStatus();
}

absl::Status get_report_svg(Api& api, Call& call) {
  auto job_report = report(api, call);
  if (!job_report.ok()) return job_report.status();
  call.response.set_content(job_report->timeline_svg(), "image/svg+xml");
  return absl::OkStatus();
}

}  // namespace

void add_rank_routes(Api& api) {
  constexpr const char* kJob = "/api/v1/jobs/([^/]+)";
  constexpr const char* kRank = "/api/v1/jobs/([^/]+)/ranks/([^/]+)";
  auto route = [&api](auto handler) { return [&api, handler](Call& call) { return handler(api, call); }; };
  api.get(absl::StrCat(kJob, "/ranks"), Needs::kUser, route(list_ranks));
  api.get(kRank, Needs::kUser, route(get_rank));
  api.get(absl::StrCat(kRank, "/output"), Needs::kUser, route(get_output));
  api.get(absl::StrCat(kRank, "/files/(.+)"), Needs::kUser, route(get_file));
  api.get(absl::StrCat(kRank, "/archive"), Needs::kUser, route(get_rank_archive));
  api.get(absl::StrCat(kJob, "/archive"), Needs::kUser, route(get_job_archive));
  api.get(absl::StrCat(kJob, "/timeline"), Needs::kUser, route(get_timeline));
  api.get(absl::StrCat(kJob, "/distribution"), Needs::kUser, route(get_distribution));
  api.get(absl::StrCat(kJob, "/report.svg"), Needs::kUser, route(get_report_svg));
}

}  // namespace pesc::http
