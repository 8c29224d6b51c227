// pesc.h, the public face: converts the client library's Status results
// into pesc::Error once, here.
#include <fstream>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "archive/archive.h"
#include "client/client.h"
#include "client/client_conversion.h"
#include "common/files.h"
#include "farm/connection.h"
#include "pesc/pesc.h"

namespace pesc {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void raise(const absl::Status& status) {
  throw Error(static_cast<ErrorCode>(status.code()), std::string(status.message()));
}

template <typename T>
T value_or_raise(absl::StatusOr<T> value) {
  if (!value.ok()) raise(value.status());
  return *std::move(value);
}

void ok_or_raise(const absl::Status& status) {
  if (!status.ok()) raise(status);
}

// Results keep where each rank's files are as an opaque string, so the
// public header names no client type.
StoredBytes files_of(const std::vector<std::string>& files, size_t rank) {
  return stored_bytes_from_opaque(files.at(rank));
}

}  // namespace

const char* to_string(RankStatus status) {
  switch (status) {
    case RankStatus::kPending: return "pending";
    case RankStatus::kRunning: return "running";
    case RankStatus::kSucceeded: return "succeeded";
    case RankStatus::kFailed: return "failed";
    case RankStatus::kCancelled: return "cancelled";
  }
  return "unknown";
}

const char* to_string(FailureClass failure_class) {
  switch (failure_class) {
    case FailureClass::kNone: return "";
    case FailureClass::kJob: return "job";
    case FailureClass::kRank: return "rank";
    case FailureClass::kWorker: return "worker";
    case FailureClass::kOwner: return "owner";
  }
  return "unknown";
}

int64_t parse_size(const std::string& text) {
  double number = 0;
  size_t used = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text.substr(used)));
  if (absl::EndsWith(unit, "IB")) unit.erase(unit.size() - 2);
  if (unit.size() == 2 && unit[1] == 'B') unit.pop_back();
  static const std::map<std::string, double> kMultipliers = {
      {"", 1}, {"B", 1}, {"K", 1024.0}, {"M", 1024.0 * 1024}, {"G", 1024.0 * 1024 * 1024}, {"T", 1024.0 * 1024 * 1024 * 1024}};
  auto multiplier = kMultipliers.find(unit);
  if (used == 0 || multiplier == kMultipliers.end() || !(number >= 0) || number * multiplier->second > 9.2e18) {
    raise(absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a size: write bytes or a number with K, M, G or T (e.g. 512M)")));
  }
  return static_cast<int64_t>(number * multiplier->second);
}

// --- Results

std::string Results::output() const {
  std::string joined;
  for (const RankResult& rank : ranks_) joined += rank.output;
  return joined;
}

std::vector<int> Results::failed_ranks() const {
  std::vector<int> failed;
  for (const RankResult& rank : ranks_) {
    if (!rank.ok()) failed.push_back(rank.rank);
  }
  return failed;
}

void Results::save(const fs::path& dir) const {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) raise(absl::PermissionDeniedError(absl::StrCat("cannot create ", dir.string(), ": ", error.message())));
  for (const RankResult& rank : ranks_) {
    fs::path rank_dir = dir / absl::StrCat("rank_", rank.rank);
    fs::create_directories(rank_dir, error);
    if (rank.has_files) {
      ok_or_raise(connection_->client().save_files(files_of(files_, static_cast<size_t>(rank.rank)), rank_dir));
    }
    ok_or_raise(write_file_atomically(rank_dir / "output.txt", rank.output));
  }
  ok_or_raise(write_file_atomically(dir / "output.txt", output()));
}

std::string Results::read_file(size_t rank, const fs::path& relative) const {
  auto missing = [&] {
    return absl::NotFoundError(
        absl::StrCat("rank ", rank, " left no file \"", relative.string(), "\" in its output_dir"));
  };
  if (!ranks_.at(rank).has_files) raise(missing());
  if (StoredBytes files = files_of(files_, rank); !files.inline_data.empty()) {
    auto bytes = archive::read_member(files.inline_data, relative.lexically_normal().string());
    if (bytes.status().code() == absl::StatusCode::kNotFound) raise(missing());
    return value_or_raise(std::move(bytes));
  }
  TempDirectory scratch = value_or_raise(TempDirectory::create("pesc-rank-files-"));
  ok_or_raise(connection_->client().save_files(files_of(files_, rank), scratch.path()));
  fs::path file = scratch.path() / relative;
  std::error_code error;
  if (!fs::is_regular_file(file, error)) raise(missing());
  return value_or_raise(pesc::read_file(file));
}

JobReport Results::report() const {
  std::chrono::system_clock::time_point submitted, finished;
  std::vector<WorkerPause> pauses;
  // A job the farm has forgotten still has its ranks' own times.
  if (connection_) {
    if (auto job = connection_->client().job(job_id_); job.ok()) {
      submitted = job->created;
      finished = job->finished;
      pauses = std::move(job->pauses);
    }
  }
  return JobReport::from(job_id_, ranks_, submitted, finished, pauses);
}

std::string Results::timeline_svg() const { return report().timeline_svg(); }

// --- Job

struct Job::State {
  std::shared_ptr<Connection> connection;
  std::string job_id;
  int repetitions = 0;
  bool warm_runner = false;
  std::unique_ptr<JobWatch> watch;
  std::vector<std::optional<RankResult>> ranks;
  std::vector<std::string> files;
  int returned = 0;
  int64_t last_seq = 0;  // the latest finish_seq taken: a watch after a retry starts there
  Progress progress;
  bool finished = false;
  bool saw_job_fault = false;

  RankResult accept(StoredRankResult stored) {
    RankResult& rank = stored.result;
    if (rank.rank < 0 || rank.rank >= repetitions) {
      raise(absl::DataLossError(absl::StrCat("the farm reported rank ", rank.rank, " of a job of ",
                                             repetitions, " ranks")));
    }
    rank.output = value_or_raise(connection->client().fetch(stored.output));
    files[static_cast<size_t>(rank.rank)] = to_opaque(stored.files);
    if (!ranks[static_cast<size_t>(rank.rank)]) ++returned;
    ranks[static_cast<size_t>(rank.rank)] = rank;
    last_seq = std::max(last_seq, stored.finish_seq);
    if (rank.failure_class == FailureClass::kJob) saw_job_fault = true;
    // Every rank is in: the job is done without waiting for the farm to say
    // so, unless its ranks' faults may have failed the job as a whole.
    if (returned == repetitions && !saw_job_fault) finished = true;
    return rank;
  }

  // The farm runs these ranks again: they are awaited anew, on a watch
  // from the last result taken (theirs come after it).
  void reopen(const RetriedRanks& retried) {
    for (int rank : retried.ranks) {
      if (rank < 0 || rank >= repetitions) continue;
      if (ranks[static_cast<size_t>(rank)]) --returned;
      ranks[static_cast<size_t>(rank)].reset();
    }
    saw_job_fault = std::any_of(ranks.begin(), ranks.end(), [](const std::optional<RankResult>& rank) {
      return rank && rank->failure_class == FailureClass::kJob;
    });
    finished = false;
    progress = retried.job.progress;
    watch = connection->client().watch(job_id, last_seq);
  }
};

struct RankLog::State {
  std::shared_ptr<Connection> connection;
  std::string job_id;
  int rank = 0;
  bool follow = true;
  int64_t offset = 0;   // of what was returned, in the followed attempt's output
  int64_t attempt = 0;  // the attempt followed; 0 before one was seen
  bool ended = false;

  // What is new since the last piece; nullopt when nothing is.
  std::optional<std::string> poll() {
    RankOutputPiece now = value_or_raise(connection->client().read_output(job_id, rank, offset));
    if (now.result) {
      ended = true;
      if (now.result->result.attempt != attempt) offset = 0;  // another attempt's result: all of it
      std::string text = value_or_raise(connection->client().fetch(now.result->output));
      return piece_from(text.substr(std::min<size_t>(static_cast<size_t>(offset), text.size())));
    }
    if (now.state == RankStatus::kRunning && now.attempt != attempt) {
      attempt = now.attempt;
      if (offset > 0) {  // read again, from the start of the new attempt's output
        offset = 0;
        return std::nullopt;
      }
    }
    if (!follow) ended = true;
    return piece_from(std::move(now.data));
  }
  std::optional<std::string> piece_from(std::string data) {
    offset += static_cast<int64_t>(data.size());
    if (data.empty() && !(ended && !follow)) return std::nullopt;
    return data;
  }
};

Job::Job(std::unique_ptr<State> state) : state_(std::move(state)) {}
Job::Job(Job&&) noexcept = default;
Job& Job::operator=(Job&&) noexcept = default;
Job::~Job() = default;

const std::string& Job::id() const { return state_->job_id; }
int Job::repetitions() const { return state_->repetitions; }
bool Job::warm_runner() const { return state_->warm_runner; }
Progress Job::progress() const { return state_->progress; }
bool Job::done() const { return state_->finished; }

std::optional<RankResult> Job::next(std::chrono::milliseconds timeout) {
  // How long a wait goes on before asking whether the farm gave up on the
  // job's ranks (a session's pool that paused itself).
  constexpr absl::Duration kStuckCheck = absl::Seconds(2);
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  while (!state_->finished) {
    absl::Duration wait = std::max(absl::ZeroDuration(), deadline - absl::Now());
    if (state_->connection->may_get_stuck()) wait = std::min(wait, kStuckCheck);
    auto event = state_->watch->next(wait);
    if (!event) {
      // Asked on every timeout: a caller may wait in short slices.
      if (std::string stuck = state_->connection->stuck_reason(); !stuck.empty()) {
        raise(absl::FailedPreconditionError(absl::StrCat("job ", state_->job_id, " cannot run: ", stuck)));
      }
      if (absl::Now() >= deadline) return std::nullopt;
      continue;
    }
    if (auto* result = std::get_if<StoredRankResult>(&*event)) return state_->accept(std::move(*result));
    if (auto* progress = std::get_if<Progress>(&*event)) state_->progress = *progress;
    if (auto* done = std::get_if<JobWatch::Done>(&*event)) {
      state_->progress = done->job.progress;
      state_->finished = true;
      if (done->job.state == JobState::kFailed) {
        raise(absl::FailedPreconditionError(absl::StrCat("job ", state_->job_id, " failed: ", done->job.failure)));
      }
    }
    if (auto* status = std::get_if<absl::Status>(&*event)) raise(*status);
  }
  return std::nullopt;
}

Results Job::wait() {
  while (next()) {
  }
  Results results;
  results.job_id_ = state_->job_id;
  results.connection_ = state_->connection;
  results.files_ = state_->files;
  results.last_seq_ = state_->last_seq;
  results.ranks_.reserve(state_->ranks.size());
  for (size_t rank = 0; rank < state_->ranks.size(); ++rank) {
    if (!state_->ranks[rank]) {
      raise(absl::DataLossError(absl::StrCat("job ", state_->job_id, " ended without a result for rank ", rank)));
    }
    results.ranks_.push_back(*state_->ranks[rank]);
  }
  return results;
}

void Job::cancel() { value_or_raise(state_->connection->client().cancel(state_->job_id)); }

std::string Job::cancel_for_interrupt() noexcept {
  absl::StatusOr<JobSummary> cancelled = state_->connection->client().cancel(state_->job_id);
  if (cancelled.ok()) return absl::StrCat("cancelled job ", state_->job_id);
  return absl::StrCat("could not confirm the cancel of job ", state_->job_id, ": ", cancelled.status().message());
}

std::vector<int> Job::retry(const std::vector<int>& ranks) {
  RetriedRanks retried = value_or_raise(state_->connection->client().retry(state_->job_id, ranks));
  state_->reopen(retried);
  return retried.ranks;
}

RankLog Job::log(int rank, bool follow) const {
  if (rank < 0 || rank >= state_->repetitions) {
    raise(absl::OutOfRangeError(absl::StrCat("job ", state_->job_id, " has ranks 0 to ", state_->repetitions - 1,
                                             "; there is no rank ", rank)));
  }
  return RankLog(std::make_unique<RankLog::State>(
      RankLog::State{.connection = state_->connection, .job_id = state_->job_id, .rank = rank, .follow = follow}));
}

Job Results::retry(const std::vector<int>& ranks) const {
  if (!connection_) {
    raise(absl::FailedPreconditionError("these results came from no farm: there is no job to retry"));
  }
  RetriedRanks retried = value_or_raise(connection_->client().retry(job_id_, ranks));
  auto state = std::make_unique<Job::State>();
  state->connection = connection_;
  state->job_id = job_id_;
  state->warm_runner = retried.job.warm_runner;
  state->repetitions = static_cast<int>(ranks_.size());
  state->ranks.assign(ranks_.begin(), ranks_.end());
  state->files = files_;
  state->returned = state->repetitions;
  state->last_seq = last_seq_;
  state->reopen(retried);
  return Job(std::move(state));
}

// --- RankLog

RankLog::RankLog(std::unique_ptr<State> state) : state_(std::move(state)) {}
RankLog::RankLog(RankLog&&) noexcept = default;
RankLog& RankLog::operator=(RankLog&&) noexcept = default;
RankLog::~RankLog() = default;

bool RankLog::ended() const { return state_->ended; }

std::optional<std::string> RankLog::next(std::chrono::milliseconds timeout) {
  // How often a follower asks: a line printed shows within about this long.
  constexpr absl::Duration kPoll = absl::Milliseconds(250);
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  while (!state_->ended) {
    if (std::optional<std::string> piece = state_->poll()) return piece;
    if (state_->ended) break;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    absl::SleepFor(std::min(left, kPoll));
  }
  return std::nullopt;
}

// --- Farm

Farm::Farm(std::string domain, FarmOptions options)
    : domain_(std::move(domain)),
      user_(options.user.empty() ? current_user() : options.user),
      connection_(value_or_raise(Connection::open(options))) {}

Farm::Farm(std::string domain, std::string user, std::shared_ptr<Connection> connection)
    : domain_(std::move(domain)), user_(std::move(user)), connection_(std::move(connection)) {}

Farm Farm::with_domain(std::string domain) const { return Farm(std::move(domain), user_, connection_); }

void Farm::close() { connection_->close(); }

Farm::Farm(Farm&&) noexcept = default;
Farm& Farm::operator=(Farm&&) noexcept = default;
Farm::~Farm() = default;

std::string Farm::describe() const { return connection_->describe(); }

Job Farm::map(const fs::path& process, int repetitions, const std::vector<std::string>& parameters,
              const MapOptions& options) {
  SubmitRequest request;
  request.domain = domain_;
  request.process = process;
  request.repetitions = repetitions;
  request.parameters = parameters;
  request.user = user_;
  request.options = options;
  const std::string job_id = value_or_raise(connection_->client().submit(request));
  Progress queued;
  queued.total = queued.pending = repetitions;
  return follow(job_id, queued, options.warm_runner);
}

RankLog Farm::log(const std::string& job_id, int rank, bool follow) {
  return RankLog(std::make_unique<RankLog::State>(
      RankLog::State{.connection = connection_, .job_id = job_id, .rank = rank, .follow = follow}));
}

void Farm::remove_job(const std::string& job_id) { value_or_raise(connection_->client().delete_job(job_id)); }

Job Farm::attach(const std::string& job_id) {
  JobSummary info = value_or_raise(connection_->client().job(job_id));
  return follow(job_id, info.progress, info.warm_runner);
}

Job Farm::follow(const std::string& job_id, const Progress& progress, bool warm_runner) {
  auto state = std::make_unique<Job::State>();
  state->connection = connection_;
  state->job_id = job_id;
  state->warm_runner = warm_runner;
  state->repetitions = progress.total;
  state->ranks.resize(static_cast<size_t>(state->repetitions));
  state->files.resize(static_cast<size_t>(state->repetitions));
  state->progress = progress;
  state->watch = connection_->client().watch(job_id, 0);
  return Job(std::move(state));
}

}  // namespace pesc
