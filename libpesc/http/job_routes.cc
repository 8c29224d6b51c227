// Jobs: list, submit (a multipart form), status, cancel, delete.
#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/process.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/sha256.h"
#include "coordinator/farm_state.h"
#include "http/api.h"
#include "http/job_ranks.h"
#include "http/json_views.h"
#include "ledger/ledger_conversion.h"
#include "security/input_limits.h"

namespace pesc::http {
namespace {

using nlohmann::json;

// Running slots per user over the jobs the caller sees, for fair share.
json usage_of(const std::vector<v1::JobInfo>& jobs) {
  std::map<std::string, int> running;
  int total = 0;
  for (const v1::JobInfo& job : jobs) {
    running[job.spec().user()] += job.progress().running();
    total += job.progress().running();
  }
  json usage = json::array();
  for (const auto& [user, slots] : running) {
    usage.push_back({{"user", user},
                     {"running_slots", slots},
                     {"share", total == 0 ? 0.0 : static_cast<double>(slots) / total}});
  }
  return usage;
}

absl::Status list_jobs(Api& api, Call& call) {
  auto offset = int_param(call.request, "offset", 0, 0, 1'000'000'000);
  if (!offset.ok()) return offset.status();
  auto limit = int_param(call.request, "limit", 100, 1, 1000);
  if (!limit.ok()) return limit.status();
  const std::string state = call.request.get_param_value("state");
  auto visible = api.core().access.visible_jobs(call.caller);
  if (!visible.ok()) return visible.status();
  std::vector<v1::JobInfo> jobs = to_proto(*visible);
  std::sort(jobs.begin(), jobs.end(), [](const v1::JobInfo& a, const v1::JobInfo& b) {
    return a.created_unix_ms() != b.created_unix_ms() ? a.created_unix_ms() > b.created_unix_ms() : a.id() > b.id();
  });
  json list = json::array();
  int64_t matched = 0;
  for (const v1::JobInfo& job : jobs) {
    if (!state.empty() && job_state_name(job) != state) continue;
    if (matched++ >= *offset && static_cast<int64_t>(list.size()) < *limit) list.push_back(job_json(job));
  }
  reply_json(call.response, {{"jobs", list}, {"total", matched}, {"usage", usage_of(jobs)}});
  return absl::OkStatus();
}

// A form's file part, saved under `dir` by its own file name.
absl::StatusOr<std::filesystem::path> save_part(const httplib::MultipartFormData& part,
                                                const std::filesystem::path& dir) {
  const std::filesystem::path name = std::filesystem::path(part.filename).filename();
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("the \"", part.name, "\" part needs a file name"));
  }
  const std::filesystem::path file = dir / name;
  if (absl::Status written = write_file_atomically(file, part.content); !written.ok()) return written;
  return file;
}

// Keeps an uploaded file as a blob, recorded as the caller's, as an upload
// over gRPC is kept.
absl::Status store_blob(Api& api, const Caller& caller, const std::filesystem::path& file) {
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(file, error);
  if (error) return file_error("read", file, error);
  auto stored = api.core().state.blobs().put_file(file);
  if (!stored.ok()) return api.core().state.blob_not_stored(stored.status(), /*from_worker=*/false);
  api.core().access.note_upload(caller, *stored, size);
  return absl::OkStatus();
}

absl::StatusOr<v1::BlobRef> describe_blob(const std::filesystem::path& file) {
  auto sha256 = sha256_file_hex(file);
  if (!sha256.ok()) return sha256.status();
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(file, error);
  if (error) return file_error("read", file, error);
  v1::BlobRef ref;
  ref.set_sha256(*sha256);
  ref.set_size(size);
  return ref;
}

// Whether the caller may submit `spec` and store its files: the quota of
// stored bytes and check_submit's rules (rooms, queued ranks). Files the
// farm holds already are the caller's too: they sent their bytes.
absl::Status may_store(Api& api, const Caller& caller, v1::JobSpec spec) {
  std::vector<v1::BlobRef> blobs = {spec.process()};
  for (const v1::SharedFile& shared : spec.shared()) blobs.push_back(shared.blob());
  uint64_t new_bytes = 0;
  for (const v1::BlobRef& blob : blobs) {
    if (api.core().state.blobs().contains(blob.sha256())) {
      api.core().access.note_upload(caller, blob.sha256(), blob.size());
    } else {
      new_bytes += blob.size();
    }
  }
  if (absl::Status allowed = api.core().access.check_upload(caller, new_bytes); !allowed.ok()) return allowed;
  return api.core().access.check_submit(caller, spec);
}

// The form's spec with its process and shared files described, checked
// before anything is stored: a refused form leaves nothing behind.
absl::Status submit_job(Api& api, Call& call) {
  const httplib::Request& request = call.request;
  if (!request.is_multipart_form_data() || !request.has_file("spec") || !request.has_file("process")) {
    return absl::InvalidArgumentError(
        "POST /api/v1/jobs takes multipart/form-data with a \"process\" file (a script, binary, .zip or .tar.gz), a "
        "\"spec\" part (JSON, e.g. {\"domain\": \"python\", \"repetitions\": 10}) and optional \"shared\" files");
  }
  json spec_json_in = json::parse(request.get_file_value("spec").content, nullptr, /*allow_exceptions=*/false);
  if (spec_json_in.is_discarded()) return absl::InvalidArgumentError("the \"spec\" part is not valid JSON");
  auto spec = spec_from_json(spec_json_in);
  if (!spec.ok()) return spec.status();

  auto scratch = TempDirectory::create("pesc-http-submit-");
  if (!scratch.ok()) return scratch.status();
  std::error_code error;
  std::filesystem::create_directories(scratch->path() / "process", error);
  auto process_file = save_part(request.get_file_value("process"), scratch->path() / "process");
  if (!process_file.ok()) return process_file.status();
  auto process = prepare_process(*process_file, spec->entry());
  if (!process.ok()) return process.status();
  spec->set_process_kind(process->kind);
  spec->set_entry(process->entry);
  auto process_blob = describe_blob(process->upload);
  if (!process_blob.ok()) return process_blob.status();
  *spec->mutable_process() = *process_blob;

  std::vector<std::filesystem::path> shared_files;
  const auto shared_parts = request.files.equal_range("shared");
  for (auto part = shared_parts.first; part != shared_parts.second; ++part) {
    const std::filesystem::path dir = scratch->path() / absl::StrCat("shared_", shared_files.size());
    std::filesystem::create_directories(dir, error);
    auto file = save_part(part->second, dir);
    if (!file.ok()) return file.status();
    auto blob = describe_blob(*file);
    if (!blob.ok()) return blob.status();
    v1::SharedFile* shared = spec->add_shared();
    shared->set_name(file->filename().string());
    *shared->mutable_blob() = *blob;
    shared_files.push_back(*file);
  }
  if (absl::Status checked = check_job_spec(*spec, !api.core().state.options().smtp_url.empty()); !checked.ok()) {
    return checked;
  }

  // Every check before anything is stored: a refused form leaves nothing.
  std::vector<std::filesystem::path> uploads = {process->upload};
  uploads.insert(uploads.end(), shared_files.begin(), shared_files.end());
  if (absl::Status allowed = may_store(api, call.caller, *spec); !allowed.ok()) return allowed;
  for (const std::filesystem::path& file : uploads) {
    if (absl::Status stored = store_blob(api, call.caller, file); !stored.ok()) return stored;
  }
  auto job_id = api.core().access.submit(call.caller, *std::move(spec));
  if (!job_id.ok()) return job_id.status();
  reply_json(call.response, {{"id", *job_id}}, 201);
  return absl::OkStatus();
}

absl::Status get_job(Api& api, EndedJobSummaries& summaries, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  auto view = api.core().state.job(*job_id);
  if (!view.ok()) return view.status();
  const v1::JobInfo job = to_proto(*view);
  json body = job_json(job);
  body["spec"] = spec_json(job.spec());
  const int64_t end_ms = job.finished_unix_ms() != 0 ? job.finished_unix_ms() : now_unix_ms();
  body["wall_s"] = static_cast<double>(end_ms - job.created_unix_ms()) / 1000.0;
  auto summary = summaries.of(api.core().state, job);
  if (!summary.ok()) return summary.status();
  body["speedup"] = *summary ? json((*summary)->speedup) : json();
  body["workers_used"] = *summary ? json((*summary)->workers_used) : json();
  reply_json(call.response, body);
  return absl::OkStatus();
}

absl::Status cancel_job(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  auto job = api.core().state.cancel(*job_id);
  if (!job.ok()) return job.status();
  reply_json(call.response, {{"id", job->id}, {"state", job_state_name(to_proto(*job))}});
  return absl::OkStatus();
}

absl::Status delete_job(Api& api, Call& call) {
  auto job_id = api.job_of(call);
  if (!job_id.ok()) return job_id.status();
  auto freed = api.core().state.delete_job(*job_id);
  if (!freed.ok()) return freed.status();
  reply_json(call.response, {{"id", *job_id}, {"bytes_freed", *freed}});
  return absl::OkStatus();
}

}  // namespace

void add_job_routes(Api& api) {
  api.get("/api/v1/jobs", Needs::kUser, [&api](Call& call) { return list_jobs(api, call); });
  api.post("/api/v1/jobs", Needs::kUser, [&api](Call& call) { return submit_job(api, call); });
  // The routes live as long as the server; so does what they keep.
  auto summaries = std::make_shared<EndedJobSummaries>();
  api.get(R"(/api/v1/jobs/([^/]+))", Needs::kUser,
          [&api, summaries](Call& call) { return get_job(api, *summaries, call); });
  api.post(R"(/api/v1/jobs/([^/]+)/cancel)", Needs::kUser, [&api](Call& call) { return cancel_job(api, call); });
  api.del(R"(/api/v1/jobs/([^/]+))", Needs::kUser, [&api](Call& call) { return delete_job(api, call); });
}

}  // namespace pesc::http
