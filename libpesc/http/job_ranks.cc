#include "http/job_ranks.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/client_conversion.h"
#include "ledger/ledger_conversion.h"

namespace pesc::http {

absl::Status for_each_rank(FarmState& state, const std::string& job_id,
                           const std::function<absl::Status(const v1::RankResult&)>& visit) {
  for (int64_t offset = 0;; offset += kRanksPerPage) {
    auto page = state.ranks_page(job_id, std::nullopt, offset, kRanksPerPage);
    if (!page.ok()) return page.status();
    for (const RankRecord& rank : page->ranks) {
      if (absl::Status visited = visit(to_proto(rank)); !visited.ok()) return visited;
    }
    if (static_cast<int>(page->ranks.size()) < kRanksPerPage) return absl::OkStatus();
  }
}

absl::StatusOr<v1::RankResult> one_rank(FarmState& state, const std::string& job_id, int rank) {
  auto page = state.ranks_page(job_id, std::nullopt, rank, 1);
  if (!page.ok()) return page.status();
  if (page->ranks.empty()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has ", page->total, " ranks, 0 to ", page->total - 1,
                                            "; there is no rank ", rank));
  }
  return to_proto(page->ranks.front());
}

uint64_t output_size(const v1::RankResult& rank) {
  const v1::Payload& output = rank.output_txt();
  return output.has_blob() ? output.blob().size() : output.inline_data().size();
}

absl::Status send_output(const v1::RankResult& rank, const BlobStore& blobs, const Write& write) {
  const v1::Payload& output = rank.output_txt();
  if (!output.has_blob()) return output.inline_data().empty() ? absl::OkStatus() : write(output.inline_data());
  const std::filesystem::path file = blobs.path_of(output.blob().sha256());
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat("rank ", rank.rank(), "'s output.txt is missing (", file.string(), ")"));
  std::string buffer(64 * 1024, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() == 0) break;
    if (absl::Status written = write(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
        !written.ok()) {
      return written;
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", file.string()));
  return absl::OkStatus();
}

std::optional<archive::Source> files_of(const v1::RankResult& rank, const BlobStore& blobs) {
  if (!rank.files_inline().empty()) return archive::Source(std::string_view(rank.files_inline()));
  if (!rank.files().sha256().empty()) return archive::Source(blobs.path_of(rank.files().sha256()));
  return std::nullopt;
}

absl::StatusOr<JobReport> report_of(FarmState& state, const v1::JobInfo& job) {
  std::vector<RankResult> ranks;
  ranks.reserve(static_cast<size_t>(job.progress().total()));
  absl::Status read = for_each_rank(state, job.id(), [&](const v1::RankResult& rank) {
    ranks.push_back(from_proto(rank).result);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  const JobSummary summary = from_proto(job);
  return JobReport::from(job.id(), ranks, summary.created, summary.finished, summary.pauses);
}

absl::StatusOr<std::optional<EndedJobSummaries::Summary>> EndedJobSummaries::of(FarmState& state,
                                                                             const v1::JobInfo& job) {
  if (job.state() == v1::JOB_STATE_RUNNING) return std::nullopt;
  {
    absl::MutexLock lock(&mutex_);
    if (auto kept = kept_.find(job.id()); kept != kept_.end()) return kept->second;
  }
  auto report = report_of(state, job);
  if (!report.ok()) return report.status();
  const Summary summary{report->speedup, static_cast<int>(report->workers.size())};
  absl::MutexLock lock(&mutex_);
  if (kept_.size() >= kKept) kept_.erase(kept_.begin());
  kept_[job.id()] = summary;
  return summary;
}

}  // namespace pesc::http
