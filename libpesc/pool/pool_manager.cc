#include "pool/pool_manager.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "pool/command.h"
#include "security/secret_file.h"
#include "security/token_store.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

constexpr absl::Duration kTick = absl::Seconds(2);
constexpr std::chrono::seconds kCommandTimeout{30};
// Pilots submitted and not yet running, per pool, at most.
constexpr int kMaxWaitingPilots = 16;
// A pilot the batch system lists no more this soon after its submit may
// simply not be listed yet.
constexpr absl::Duration kListingDelay = absl::Seconds(5);
// Queued this long without starting, a pilot is given up on.
constexpr absl::Duration kStartTimeout = absl::Minutes(10);
// Running this long without its worker joining, a pilot is given up on.
constexpr absl::Duration kJoinTimeout = absl::Minutes(2);
// Waiting pilots are cancelled once no rank has waited for this long.
constexpr absl::Duration kCancelAfter = absl::Seconds(15);
constexpr int kFailuresToPause = 3;

void log(const std::string& pool, const std::string& what) {
  std::cerr << "pesc-coordinator: pool " << pool << ": " << what << std::endl;
}

std::string worker_id_of(const std::string& pool, const std::string& pilot) {
  return absl::StrCat("pilot-", pool, "-", pilot);
}

// The last line a pilot wrote to its log, for a failure's reason.
std::string last_log_line(const fs::path& log) {
  auto text = read_file(log);
  if (!text.ok()) return absl::StrCat("no log at ", log.string());
  std::vector<std::string> lines = absl::StrSplit(absl::StripTrailingAsciiWhitespace(*text), '\n');
  return absl::StrCat(log.string(), " ends: ", lines.empty() ? "" : lines.back());
}

// The spec checked, its batch_system the template's name when it has one.
absl::StatusOr<PoolSpec> checked_spec(PoolSpec spec) {
  if (absl::Status name = check_identity_name(spec.name); !name.ok()) return name;
  auto batch = batch_system_of(spec);
  if (!batch.ok()) return batch.status();
  spec.batch_system = batch->name;
  if (spec.max_workers < 1) return absl::InvalidArgumentError("--max-workers must be at least 1");
  if (spec.slots_per_worker < 1) return absl::InvalidArgumentError("--slots-per-worker must be at least 1");
  if (spec.time_limit < std::chrono::minutes(1)) return absl::InvalidArgumentError("--time-limit must be at least 1m");
  if (spec.idle_timeout < std::chrono::seconds(1)) {
    return absl::InvalidArgumentError("--idle-timeout must be at least 1s");
  }
  return spec;
}

}  // namespace

absl::Status check_pool_spec(const PoolSpec& spec) { return checked_spec(spec).status(); }

absl::StatusOr<std::unique_ptr<PoolManager>> PoolManager::open(const fs::path& database_file, fs::path pools_dir,
                                                               PoolHost host) {
  auto store = PoolStore::open(database_file);
  if (!store.ok()) return store.status();
  auto specs = (*store)->list();
  if (!specs.ok()) return specs.status();
  auto manager =
      std::unique_ptr<PoolManager>(new PoolManager(std::move(*store), std::move(pools_dir), std::move(host)));
  absl::MutexLock lock(&manager->mutex_);
  for (PoolSpec& spec : *specs) {
    const std::string name = spec.name;
    if (absl::Status opened = manager->open_pool(std::move(spec), false); !opened.ok()) {
      return absl::Status(opened.code(), absl::StrCat("pool ", name, ": ", opened.message()));
    }
  }
  return manager;
}

PoolManager::PoolManager(std::unique_ptr<PoolStore> store, fs::path pools_dir, PoolHost host)
    : pools_dir_(std::move(pools_dir)), host_(std::move(host)), store_(std::move(store)) {}

PoolManager::~PoolManager() { shut_down(); }

absl::Status PoolManager::open_pool(PoolSpec spec, bool added) {
  Pool pool;
  pool.adopt_listed = !added;
  auto batch = batch_system_of(spec);
  if (!batch.ok()) return batch.status();
  pool.batch = *std::move(batch);
  pool.dir = pools_dir_ / spec.name;
  std::error_code error;
  fs::create_directories(pool.dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot make ", pool.dir.string(), ": ", error.message()));
  // The token goes to pilots in a file only its owner (who submits them) reads.
  const fs::path token_file = pool.dir / "join.token";
  if (added || !fs::exists(token_file)) {
    auto token = host_.issue_token(spec.name);
    if (!token.ok()) return token.status();
    if (!token->empty()) {
      if (absl::Status written = write_file_with_mode(token_file, *token + "\n", 0600); !written.ok()) return written;
    }
  }
  if (fs::exists(token_file)) pool.token_file = token_file;
  pool.spec = std::move(spec);
  const std::string name = pool.spec.name;
  pools_[name] = std::move(pool);
  return absl::OkStatus();
}

void PoolManager::start(PilotSetup setup) {
  absl::MutexLock lock(&mutex_);
  if (thread_ != nullptr) return;
  setup_ = std::move(setup);
  thread_ = std::make_unique<std::thread>([this] { loop(); });
}

void PoolManager::shut_down() {
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_ != nullptr) thread_->join();
  absl::MutexLock lock(&mutex_);
  for (auto& [name, pool] : pools_) {
    std::vector<std::string> ids;
    for (const auto& [id, pilot] : pool.pilots) ids.push_back(id);
    if (!ids.empty()) log(name, absl::StrCat("cancelling ", cancel(pool, ids), " pilots at shutdown"));
  }
}

absl::Status PoolManager::add(PoolSpec spec) {
  auto checked = checked_spec(std::move(spec));
  if (!checked.ok()) return checked.status();
  absl::MutexLock lock(&mutex_);
  if (pools_.contains(checked->name)) {
    return absl::AlreadyExistsError(absl::StrCat("there is a pool \"", checked->name,
                                                 "\" already; `pesc pool remove ", checked->name, "` first"));
  }
  return add_checked(*std::move(checked));
}

absl::Status PoolManager::put(PoolSpec spec) {
  auto checked = checked_spec(std::move(spec));
  if (!checked.ok()) return checked.status();
  absl::MutexLock lock(&mutex_);
  // Before the first look at the batch system, the pilots a replaced pool
  // left are still to be taken over (and cancelled when not needed).
  bool adopt_listed = false;
  if (auto pool = pools_.find(checked->name); pool != pools_.end()) {
    if (pool->second.spec == *checked) return absl::OkStatus();
    adopt_listed = pool->second.adopt_listed;
    if (auto removed = remove_locked(checked->name); !removed.ok()) return removed.status();
  }
  const std::string name = checked->name;
  if (absl::Status added = add_checked(*std::move(checked)); !added.ok()) return added;
  pools_[name].adopt_listed = adopt_listed;
  return absl::OkStatus();
}

absl::Status PoolManager::add_checked(PoolSpec spec) {
  if (absl::Status stored = store_->put(spec); !stored.ok()) return stored;
  const std::string name = spec.name;
  if (absl::Status opened = open_pool(std::move(spec), true); !opened.ok()) {
    (void)store_->remove(name);  // the pool is refused as a whole; the error said why
    return opened;
  }
  wake_ = true;
  update_note();
  return absl::OkStatus();
}

absl::StatusOr<int> PoolManager::remove(const std::string& name) {
  absl::MutexLock lock(&mutex_);
  return remove_locked(name);
}

absl::StatusOr<int> PoolManager::remove_locked(const std::string& name) {
  auto pool = pools_.find(name);
  if (pool == pools_.end()) return absl::NotFoundError(absl::StrCat("there is no pool \"", name, "\""));
  if (absl::Status removed = store_->remove(name); !removed.ok()) return removed;
  std::vector<std::string> ids;
  for (const auto& [id, pilot] : pool->second.pilots) ids.push_back(id);
  const int cancelled = cancel(pool->second, ids);
  host_.revoke_tokens(name);
  std::error_code error;
  fs::remove(pool->second.dir / "join.token", error);
  if (error) log(name, absl::StrCat("cannot remove its join token: ", error.message()));
  pools_.erase(pool);
  update_note();
  return cancelled;
}

absl::Status PoolManager::resume(const std::string& name) {
  absl::MutexLock lock(&mutex_);
  auto pool = pools_.find(name);
  if (pool == pools_.end()) return absl::NotFoundError(absl::StrCat("there is no pool \"", name, "\""));
  pool->second.paused.clear();
  pool->second.failures_in_a_row = 0;
  pool->second.next_submit = absl::InfinitePast();
  wake_ = true;
  update_note();
  return absl::OkStatus();
}

std::vector<PoolStatus> PoolManager::list() {
  absl::MutexLock lock(&mutex_);
  std::vector<PoolStatus> statuses;
  for (const auto& [name, pool] : pools_) statuses.push_back(status_of(pool));
  return statuses;
}

std::string PoolManager::waiting_note() {
  absl::MutexLock lock(&note_mutex_);
  return note_;
}

void PoolManager::loop() {
  while (true) {
    // Asked before the lock: the host takes its own.
    const int waiting = host_.waiting_ranks();
    const std::set<std::string> online = host_.online_workers();
    absl::MutexLock lock(&mutex_);
    if (stopping_) return;
    for (auto& [name, pool] : pools_) tick(pool, waiting, online);
    update_note();
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_ || wake_; };
    mutex_.AwaitWithTimeout(absl::Condition(&woken), kTick);
    wake_ = false;
    if (stopping_) return;
  }
}

void PoolManager::tick(Pool& pool, int waiting, const std::set<std::string>& online) {
  follow_pilots(pool, online);
  if (!pool.paused.empty()) {
    cancel_waiting(pool);
    return;
  }
  const absl::Time now = absl::Now();
  if (waiting > 0) pool.last_demand = now;
  if (waiting == 0 && now - pool.last_demand > kCancelAfter) {
    if (const int cancelled = cancel_waiting(pool); cancelled > 0) {
      log(pool.spec.name, absl::StrCat("no rank waits: cancelled ", cancelled, " pilots still queued"));
    }
    return;
  }
  // Pilots not yet joined will take ranks soon; those that joined have.
  int coming = 0;
  int queued = 0;
  for (const auto& [id, pilot] : pool.pilots) {
    coming += pilot.joined ? 0 : 1;
    queued += pilot.running ? 0 : 1;
  }
  const int slots = pool.spec.slots_per_worker;
  int wanted = (waiting + slots - 1) / slots - coming;
  wanted = std::min(wanted, pool.spec.max_workers - static_cast<int>(pool.pilots.size()));
  wanted = std::min(wanted, kMaxWaitingPilots - queued);
  if (wanted > 0 && now >= pool.next_submit) submit(pool, wanted);
}

void PoolManager::follow_pilots(Pool& pool, const std::set<std::string>& online) {
  if (pool.pilots.empty() && !pool.adopt_listed) return;
  const std::vector<std::string> argv = expand_command(pool.batch.status, {{"pool", pool.spec.name}});
  auto listed = run_command(argv, kCommandTimeout);
  if (!listed.ok() || listed->exit_code != 0) {
    // The batch system may be busy for a moment; the next tick asks again.
    pool.last_failure = listed.ok() ? describe_failure(argv, *listed) : std::string(listed.status().message());
    return;
  }
  std::map<std::string, std::pair<std::string, std::string>> states;  // id -> state, reason
  for (absl::string_view line : absl::StrSplit(listed->out, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> words = absl::StrSplit(absl::StripAsciiWhitespace(line), absl::MaxSplits(' ', 2));
    if (words.size() >= 2) states[words[0]] = {words[1], words.size() > 2 ? words[2] : ""};
  }
  const absl::Time now = absl::Now();
  if (pool.adopt_listed) {
    pool.adopt_listed = false;
    for (const auto& [id, state] : states) pool.pilots[id] = Pilot{.submitted = now, .joined = true};
    if (!states.empty()) log(pool.spec.name, absl::StrCat("took over ", states.size(), " pilots still listed"));
  }
  std::vector<std::string> never_started;
  std::vector<std::string> never_joined;
  for (auto it = pool.pilots.begin(); it != pool.pilots.end();) {
    const std::string& id = it->first;
    Pilot& pilot = it->second;
    if (online.contains(worker_id_of(pool.spec.name, id)) && !pilot.joined) {
      pilot.joined = true;
      pool.failures_in_a_row = 0;
      log(pool.spec.name, absl::StrCat("pilot ", id, " joined, ", absl::FormatDuration(now - pilot.submitted),
                                         " after its submit"));
    }
    auto state = states.find(id);
    if (state == states.end()) {
      if (now - pilot.submitted < kListingDelay) {
        ++it;
        continue;
      }
      if (!pilot.joined) {
        failed(pool, absl::StrCat("pilot ", id, " ended before its worker joined the coordinator (",
                                  last_log_line(pool.dir / absl::StrCat("pilot-", id, ".out")), ")"));
      }
      it = pool.pilots.erase(it);
      continue;
    }
    const auto& running = pool.batch.running_states;
    pilot.running = std::find(running.begin(), running.end(), state->second.first) != running.end();
    if (pilot.running && pilot.running_since == absl::InfiniteFuture()) pilot.running_since = now;
    if (pilot.running && !pilot.joined && now - pilot.running_since > kJoinTimeout) never_joined.push_back(id);
    pilot.reason = pilot.running ? "" : absl::StrCat(state->second.first, " ", state->second.second);
    if (!pilot.running && now - pilot.submitted > kStartTimeout) never_started.push_back(id);
    ++it;
  }
  for (const std::string& id : never_started) {
    const std::string reason = pool.pilots[id].reason;
    cancel(pool, {id});
    failed(pool, absl::StrCat("pilot ", id, " waited ", absl::FormatDuration(kStartTimeout),
                              " in the queue without starting (", reason, "); it was cancelled"));
  }
  for (const std::string& id : never_joined) {
    cancel(pool, {id});
    failed(pool, absl::StrCat("pilot ", id, " ran ", absl::FormatDuration(kJoinTimeout),
                              " and its worker never joined ", setup_.coordinator_address,
                              ": can the nodes reach it? (",
                              last_log_line(pool.dir / absl::StrCat("pilot-", id, ".out")), "); it was cancelled"));
  }
}

std::string PoolManager::pilot_script(const Pool& pool) const {
  std::vector<std::string> worker = {setup_.worker_program,
                                     "--coordinator",
                                     setup_.coordinator_address,
                                     "--slots",
                                     absl::StrCat(pool.spec.slots_per_worker),
                                     "--idle-timeout",
                                     absl::StrCat(pool.spec.idle_timeout.count(), "s"),
                                     "--no-owners-first"};
  if (!pool.token_file.empty()) {
    worker.push_back("--token-file");
    worker.push_back(pool.token_file.string());
  }
  worker.insert(worker.end(), setup_.connection_args.begin(), setup_.connection_args.end());
  worker.insert(worker.end(), pool.spec.worker_args.begin(), pool.spec.worker_args.end());
  std::vector<std::string> quoted;
  for (const std::string& word : worker) quoted.push_back(shell_quote(word));
  return expand_text(pool.batch.script, {{"pool", pool.spec.name},
                                          {"log_dir", shell_quote(pool.dir.string())},
                                          {"worker", absl::StrJoin(quoted, " ")}});
}

void PoolManager::submit(Pool& pool, int count) {
  const fs::path script = pool.dir / "pilot.sh";
  if (absl::Status written = write_file_with_mode(script, pilot_script(pool), 0700); !written.ok()) {
    return failed(pool, absl::StrCat("cannot write the pilot script: ", written.message()));
  }
  const std::map<std::string, std::string> values = {
      {"pool", pool.spec.name},
      {"script", script.string()},
      {"count", absl::StrCat(count)},
      {"last", count > 1 ? absl::StrCat(count - 1) : ""},
      {"partition", pool.spec.partition},
      {"minutes", absl::StrCat((pool.spec.time_limit.count() + 59) / 60)},
      {"slots", absl::StrCat(pool.spec.slots_per_worker)}};
  const std::vector<std::string> argv = expand_command(pool.batch.submit, values, pool.spec.submit_args);
  auto submitted = run_command(argv, kCommandTimeout);
  if (!submitted.ok()) return failed(pool, std::string(submitted.status().message()));
  std::string job(absl::StripAsciiWhitespace(submitted->out));
  job = job.substr(0, job.find_first_of("; \n"));
  if (submitted->exit_code != 0 || job.empty()) return failed(pool, describe_failure(argv, *submitted));
  const absl::Time now = absl::Now();
  for (int index = 0; index < count; ++index) {
    const std::string id = expand_text(count > 1 ? pool.batch.array_id : pool.batch.single_id,
                                       {{"job", job}, {"index", absl::StrCat(index)}});
    pool.pilots[id] = Pilot{.submitted = now};
  }
  pool.submitted += count;
  log(pool.spec.name, absl::StrCat("submitted ", count, count > 1 ? " pilots as array job " : " pilot as job ", job));
}

int PoolManager::cancel(Pool& pool, const std::vector<std::string>& ids) {
  if (ids.empty()) return 0;
  const std::vector<std::string> argv = expand_command(pool.batch.cancel, {}, ids);
  auto cancelled = run_command(argv, kCommandTimeout);
  if (!cancelled.ok() || cancelled->exit_code != 0) {
    // Pilots cancelled in vain still leave when idle or at their walltime.
    log(pool.spec.name,
        cancelled.ok() ? describe_failure(argv, *cancelled) : std::string(cancelled.status().message()));
  }
  for (const std::string& id : ids) pool.pilots.erase(id);
  return static_cast<int>(ids.size());
}

int PoolManager::cancel_waiting(Pool& pool) {
  std::vector<std::string> ids;
  for (const auto& [id, pilot] : pool.pilots) {
    if (!pilot.running) ids.push_back(id);
  }
  return cancel(pool, ids);
}

std::string resume_advice(const std::string& pool_name) {
  return absl::StrCat("Fix it, then `pesc pool resume ", pool_name, "`");
}

void PoolManager::failed(Pool& pool, const std::string& why) {
  pool.last_failure = why;
  pool.failures_in_a_row += 1;
  log(pool.spec.name, why);
  // Backs off: 4 s, 8 s, ... up to 5 minutes.
  pool.next_submit =
      absl::Now() + std::min(absl::Seconds(2) * (int64_t{1} << std::min(pool.failures_in_a_row, 8)), absl::Minutes(5));
  if (pool.failures_in_a_row >= kFailuresToPause && pool.paused.empty()) {
    pool.paused = absl::StrCat("paused after ", pool.failures_in_a_row, " failures of ", pool.batch.name,
                               " in a row; the last: ", why);
    log(pool.spec.name, pool.paused);
  }
}

PoolStatus PoolManager::status_of(const Pool& pool) const {
  PoolStatus status{.spec = pool.spec,
                    .pilots_submitted = pool.submitted,
                    .paused = pool.paused,
                    .last_failure = pool.last_failure};
  std::set<std::string> reasons;
  for (const auto& [id, pilot] : pool.pilots) {
    if (pilot.running) {
      ++status.pilots_running;
    } else {
      ++status.pilots_pending;
      if (!pilot.reason.empty()) reasons.insert(pilot.reason);
    }
  }
  status.pending_reason = absl::StrJoin(reasons, ", ");
  return status;
}

void PoolManager::update_note() {
  std::vector<std::string> notes;
  for (const auto& [name, pool] : pools_) {
    const PoolStatus status = status_of(pool);
    if (!status.paused.empty()) {
      notes.push_back(absl::StrCat("pool ", name, " is ", status.paused, ". ", resume_advice(name)));
    } else if (status.pilots_pending > 0) {
      notes.push_back(absl::StrCat("pool ", name, ": ", status.pilots_pending, " pilots wait in ", pool.batch.name,
                                   status.pending_reason.empty() ? "" : " (", status.pending_reason,
                                   status.pending_reason.empty() ? "" : ")"));
    } else if (!status.last_failure.empty()) {
      notes.push_back(absl::StrCat("pool ", name, ": ", status.last_failure));
    }
  }
  absl::MutexLock lock(&note_mutex_);
  note_ = absl::StrJoin(notes, "; ");
}

}  // namespace pesc
