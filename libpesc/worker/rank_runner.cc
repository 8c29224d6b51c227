#include "worker/rank_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <deque>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "archive/archive.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/rank_contract.h"
#include "executor/warm_runner.h"
#include "transport/transport.h"

namespace pesc {
namespace fs = std::filesystem;

namespace {

constexpr const char* kOutputFile = "output.txt";

// Set 0 is a rank's own output_dir and checkpoint_dir; a warm runner's
// further sets are numbered after it.
std::pair<fs::path, fs::path> dirs_of_set(const fs::path& run_dir, int set) {
  if (set == 0) return {run_dir / "output", run_dir / "checkpoint"};
  return {run_dir / absl::StrCat("output-", set), run_dir / absl::StrCat("checkpoint-", set)};
}

RankContext context_for(const RankTask& task, const fs::path& run_dir, bool gpu_host) {
  const JobRun& job = *task.job;
  RankContext context;
  context.app_dir = run_dir / "app";
  context.checkpoint_dir = run_dir / "checkpoint";
  context.output_dir = run_dir / "output";
  context.rank = task.rank;
  context.world_size = job.world_size;
  context.master_addr = task.master_addr;
  context.master_port = task.master_port;
  context.parameters = job.parameters;
  context.gpus = task.gpus;
  context.gpu_host = gpu_host;
  context.seed = job.seed;
  if (job.warm_runner) {
    for (int set = 1; set < RankRunner::kWarmSets; ++set) {
      auto [output, checkpoint] = dirs_of_set(run_dir, set);
      context.spare_dirs.push_back(output);
      context.spare_dirs.push_back(checkpoint);
    }
  }
  return context;
}

// Names, sizes and modification times of everything under `dir`: changes
// when the rank writes a checkpoint.
std::string directory_signature(const fs::path& dir) {
  std::string signature;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::end(it); it.increment(error)) {
    std::error_code ignored;
    signature += it->path().string();
    if (it->is_regular_file(ignored)) {
      signature += absl::StrCat(":", it->file_size(ignored), ":",
                                it->last_write_time(ignored).time_since_epoch().count());
    }
    signature += "\n";
  }
  return signature;
}

// The names and inodes in `dir`, sorted; nullopt when it holds a directory
// (whose insides one listing cannot vouch for) or cannot be listed.
std::optional<std::vector<std::pair<std::string, ino_t>>> plain_entries(const fs::path& dir) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) return std::nullopt;
  std::vector<std::pair<std::string, ino_t>> entries;
  bool plain = true;
  while (const struct dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (entry->d_type != DT_REG && entry->d_type != DT_LNK) {
      plain = false;
      break;
    }
    entries.emplace_back(std::string(name), entry->d_ino);
  }
  ::closedir(stream);
  if (!plain) return std::nullopt;
  std::sort(entries.begin(), entries.end());
  return entries;
}

void clear_directory(const fs::path& dir, std::error_code& error) {
  for (auto it = fs::directory_iterator(dir, error); !error && it != fs::end(it); it.increment(error)) {
    fs::remove_all(it->path(), error);
    if (error) return;
  }
}

// Writes `file` into `dir`, which the rank owns: whatever the rank left
// under that name goes first, and the new file is created exclusively, so a
// link the rank planted cannot redirect the worker's write.
absl::Status place_file(const fs::path& dir, const archive::MemoryFile& file) {
  const fs::path path = dir / file.name;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot replace ", path.string(), ": ", std::strerror(errno)));
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return file_error("write", path, errno);
  absl::Status written = write_all(fd, file.bytes, path);
  absl::Status closed = close_file(fd, path);
  return written.ok() ? closed : written;
}

// A failure of the worker's disk is the worker's fault, whatever the rank.
void blame_disk_fault(const absl::Status& failure, RankOutcome& outcome) {
  if (is_disk_fault(failure)) outcome.fault = Fault::kWorker;
}

// Whose fault it was that a rank could not run or be collected: the job's
// or the rank's when the failure was marked so, the worker's otherwise.
Fault fault_of(const absl::Status& status) {
  if (is_job_fault(status)) return Fault::kJob;
  if (is_rank_fault(status)) return Fault::kRank;
  return Fault::kWorker;
}

// Links the rank left leading outside its output_dir (to /etc/passwd, say)
// cannot travel with its files: they are removed and named in the result,
// and the rest of its output goes back as usual.
absl::Status leave_out_escaping_links(const fs::path& output_dir, RankOutcome& outcome) {
  PESC_ASSIGN_OR_RETURN(std::vector<std::string> escaping, archive::links_leading_outside(output_dir));
  for (const std::string& name : escaping) {
    if (::unlink((output_dir / name).c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(absl::StrCat("cannot remove the link ", name, ": ", std::strerror(errno)));
    }
    outcome.left_out.push_back(name);
  }
  return absl::OkStatus();
}

// How long a finished rank's output waits for a coordinator that cannot
// take it (restarting, or its state disk full) before the rank goes back to
// the queue; the worker's shutdown may wait this long too.
constexpr absl::Duration kUploadPatience = absl::Seconds(60);

// Sends with `upload` until it is taken, or refused for good, or patience
// runs out: a transient refusal must not lose a finished rank's output.
template <typename Upload>
auto patiently(Upload upload) -> decltype(upload()) {
  const absl::Time give_up = absl::Now() + kUploadPatience;
  absl::Duration pause = absl::Seconds(1);
  while (true) {
    auto sent = upload();
    if (sent.ok() || !absl::IsUnavailable(sent.status()) || absl::Now() + pause > give_up) return sent;
    std::cerr << "pesc worker: the coordinator cannot take a rank's output now, trying again in " << pause << ": "
              << sent.status().message() << std::endl;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(8));
  }
}

// Says something to the user at the end of the rank's output.txt. Not
// through a link the rank may have left there in its place.
absl::Status append_note(const fs::path& output_file, std::string_view note) {
  const int fd = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return file_error("write", output_file, errno);
  absl::Status written = write_all(fd, absl::StrCat("pesc: ", std::string(note), "\n"), output_file);
  absl::Status closed = close_file(fd, output_file);
  return written.ok() ? closed : written;
}

}  // namespace

// Watches one running rank on a thread of its own, when the job asks for it:
// kills the rank at its timeout and saves its checkpoint_dir whenever it
// changed since the last look.
class RankRunner::Watchdog {
 public:
  Watchdog(const JobRun& job, RankProcess& process, fs::path checkpoint_dir, BlobSource& blobs,
           const RankHooks& hooks, RankRunner& runner)
      : timeout_(absl::Milliseconds(job.timeout_ms)),
        interval_(absl::Milliseconds(job.checkpoint_interval_ms)),
        process_(process),
        checkpoint_dir_(std::move(checkpoint_dir)),
        blobs_(blobs),
        hooks_(hooks),
        runner_(runner) {
    if (timeout_ > absl::ZeroDuration() || interval_ > absl::ZeroDuration()) {
      thread_ = std::thread([this] { watch(); });
    }
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { finish(); }

  // Stops watching; true when the rank was killed for its timeout.
  bool finish() {
    if (!done_.HasBeenNotified()) done_.Notify();
    if (thread_.joinable()) thread_.join();
    return timed_out_;
  }

 private:
  void watch() {
    const absl::Time started = absl::Now();
    const absl::Time deadline = timeout_ > absl::ZeroDuration() ? started + timeout_ : absl::InfiniteFuture();
    absl::Time next_save = interval_ > absl::ZeroDuration() ? started + interval_ : absl::InfiniteFuture();
    std::string last_seen;
    while (!done_.WaitForNotificationWithDeadline(std::min(deadline, next_save))) {
      if (absl::Now() >= deadline) {
        timed_out_ = true;
        process_.terminate(std::chrono::seconds(2));
        return;
      }
      next_save = absl::Now() + interval_;
      std::string now_seen = directory_signature(checkpoint_dir_);
      if (now_seen == last_seen) continue;
      last_seen = std::move(now_seen);
      auto saved = runner_.save_checkpoint(checkpoint_dir_, blobs_);
      if (saved.ok() && *saved && hooks_.on_checkpoint) hooks_.on_checkpoint(**saved);
    }
  }

  const absl::Duration timeout_;
  const absl::Duration interval_;
  RankProcess& process_;
  const fs::path checkpoint_dir_;
  BlobSource& blobs_;
  const RankHooks& hooks_;
  RankRunner& runner_;
  absl::Notification done_;
  bool timed_out_ = false;
  std::thread thread_;
};

fs::path RankRunner::slot_dir(int slot) const { return runs_dir_ / absl::StrCat("slot-", slot); }

fs::path RankRunner::output_file(int slot) const { return dirs_of_set(slot_dir(slot), 0).first / kOutputFile; }

void RankRunner::reset_slot(int slot) {
  SlotState& state = slot_state(slot);
  // A warm runner lives in app_dir, and a placed process waits there: both
  // stay for the job's next rank.
  const bool keep_app = state.runner != nullptr || state.app.has_value();
  std::error_code error;
  if (!keep_app) clear_directory(slot_dir(slot) / "app", error);
  for (int set = 0; set < kWarmSets && !error; ++set) error = clear_set(slot, set);
  if (error) {  // a rank left something odd: start the slot afresh
    release_warm(slot);
    (void)remove_tree(slot_dir(slot));
    state.dirs_made = state.spares_made = false;
    state.app.reset();
  }
}

std::error_code RankRunner::clear_set(int slot, int set) {
  SlotState& state = slot_state(slot);
  if (set > 0 && !state.spares_made) return {};  // a slot's spare sets are made for warm runners only
  const DirSet& dirs = state.dirs.at(set);
  std::optional<LeftBehind> left = std::exchange(state.left_behind[set], std::nullopt);
  std::error_code error;
  if (left) {
    // What the last rank left is known: no need to list the directories.
    for (const std::string& name : left->output_entries) {
      const fs::path entry = dirs.output / name;
      if (fs::is_directory(fs::symlink_status(entry, error))) {
        fs::remove_all(entry, error);
      } else {
        fs::remove(entry, error);
      }
      if (error) return error;
    }
    if (!left->checkpoint_empty) clear_directory(dirs.checkpoint, error);
    return error;
  }
  for (const fs::path& dir : {dirs.output, dirs.checkpoint}) {
    if (!fs::exists(dir, error)) {  // the rank removed it
      (set == 0 ? state.dirs_made : state.spares_made) = false;
      continue;
    }
    clear_directory(dir, error);
    if (error) return error;
  }
  return error;
}

RankOutcome RankRunner::run(const RankTask& task, int slot, BlobSource& blobs, const RankHooks& hooks) {
  bool timed_out = false;
  auto exit = execute(task, slot, blobs, hooks, timed_out);
  return outcome_of(task, slot, 0, exit, timed_out, blobs);
}

const RankRunner::DirSet& RankRunner::dir_set(int slot, int set) { return slot_state(slot).dirs.at(set); }

RankOutcome RankRunner::outcome_of(const RankTask& task, int slot, int set,
                                     const absl::StatusOr<RankExit>& exit, bool timed_out, BlobSource& blobs) {
  const DirSet& dirs = dir_set(slot, set);
  const fs::path output_file = dirs.output / kOutputFile;
  RankOutcome result;
  result.rank = task.rank;
  result.attempt_id = task.attempt_id;
  if (exit.ok()) {
    result.exit_code = exit->exit_code;
    result.signal = exit->signal;
    result.start_unix_ms = exit->start_unix_ms;
    result.end_unix_ms = exit->end_unix_ms;
    result.cpu_ms = exit->cpu_ms;
    result.max_rss_kb = exit->max_rss_kb;
    result.succeeded = exit->exit_code == 0 && exit->signal == 0 && !timed_out;
    if (!result.succeeded) result.fault = Fault::kRank;
    if (timed_out) {
      result.timed_out = true;
      const std::string note = absl::StrCat("killed after the job's timeout of ", task.job->timeout_ms / 1000.0, " s");
      blame_disk_fault(append_note(output_file, note), result);
    }
    if (!exit->limit_exceeded.empty()) {
      result.succeeded = false;
      result.fault = Fault::kRank;
      result.limit_exceeded = exit->limit_exceeded;
      const std::string note = RankIsolation::limit_note(task.job->limits, exit->limit_exceeded);
      blame_disk_fault(append_note(output_file, note), result);
    }
  } else {
    // The rank never ran: say why where the user will look, in its output.
    result.exit_code = 127;
    result.start_unix_ms = now_unix_ms();
    result.end_unix_ms = now_unix_ms();
    result.succeeded = false;
    result.fault = fault_of(exit.status());
    result.error = std::string(exit.status().message());
    blame_disk_fault(exit.status(), result);
    blame_disk_fault(append_note(output_file, std::string(exit.status().message())), result);
  }
  LeftBehind left;
  auto checkpoint = save_checkpoint(dirs.checkpoint, blobs);
  if (checkpoint.ok()) result.checkpoint = *checkpoint;
  left.checkpoint_empty = checkpoint.ok() && !*checkpoint;
  std::optional<PipedFile> piped = exit.ok() ? exit->piped_file : std::nullopt;
  auto entries = collect_output(dirs.output, std::move(piped), blobs, result);
  if (entries.ok()) {
    left.output_entries = *std::move(entries);
    slot_state(slot).left_behind[set] = std::move(left);
  } else {
    result.succeeded = false;
    result.fault = fault_of(entries.status());
    result.error = absl::StrCat("cannot send the output back: ", entries.status().message());
    blame_disk_fault(entries.status(), result);
  }
  blame_full_disk(result);
  return result;
}

void RankRunner::blame_full_disk(RankOutcome& outcome) const {
  if (outcome.fault == Fault::kWorker) return;  // it says why already
  const std::string shortage = disk_room_.shortage();
  const bool short_while_it_ran = outcome.start_unix_ms > 0 && disk_room_.was_short_since(outcome.start_unix_ms);
  if (shortage.empty() && !short_while_it_ran) return;
  outcome.succeeded = false;
  outcome.fault = Fault::kWorker;
  outcome.error = absl::StrCat("the worker's disk was full while the rank ran (",
                               shortage.empty() ? "it has room again" : shortage,
                               "): what the rank wrote may be lost");
}

bool RankRunner::can_pipeline(const RankTask& task) {
  const JobRun& job = *task.job;
  // A timeout or an output limit watches one rank's process or directory,
  // and a checkpoint is restored before its rank: those go one at a time.
  return job.warm_runner && task.rank_count > 1 && !job.gang && job.timeout_ms == 0 &&
         job.checkpoint_interval_ms == 0 && job.limits.output_bytes == 0 && !task.checkpoint;
}

void RankRunner::run_chunk(RankTask& task, int slot, BlobSource& blobs, const RankHooks& hooks,
                           const std::function<bool()>& keep_going,
                           const std::function<void(RankOutcome)>& take) {
  const int end = task.rank + std::max(1, task.rank_count);
  // The first rank starts the slot's runner, or finds it warm, as usual.
  take(run(task, slot, blobs, hooks));
  SlotState& warm = slot_state(slot);
  int next_rank = task.rank + 1;
  if (next_rank >= end || !keep_going() || !warm.runner || !warm.runner->alive()) return;
  hooks.on_start(&warm.runner->process());
  // Ranks sent to the runner and not yet answered; sets go round in rank
  // order, so the next one to send is always empty.
  struct Sent {
    int rank;
    int set;
    int64_t unix_ms;
  };
  std::deque<Sent> sent;
  bool runner_took_it = true;
  int next_set = 1;
  auto send_ahead = [&] {
    while (runner_took_it && static_cast<int>(sent.size()) < kWarmSets - 1 && next_rank < end && keep_going()) {
      const DirSet& dirs = dir_set(slot, next_set);
      // A runner that died cannot take it: the rank stays unreported, and
      // the coordinator queues it again.
      runner_took_it = warm.runner->send(next_rank, dirs.output, dirs.checkpoint).ok();
      if (!runner_took_it) return;
      sent.push_back({.rank = next_rank++, .set = next_set, .unix_ms = now_unix_ms()});
      next_set = (next_set + 1) % kWarmSets;
    }
  };
  send_ahead();
  clear_set(slot, 0);
  while (!sent.empty()) {
    const Sent front = sent.front();
    sent.pop_front();
    absl::StatusOr<RankExit> exit = warm.runner->receive();
    if (exit.ok()) {
      send_ahead();
    } else {
      // The ranks sent after this one went with the runner; unreported,
      // they are queued again by the coordinator.
      hooks.on_start(nullptr);
      exit = after_runner_failed(slot, exit.status(), false, front.unix_ms);
      sent.clear();
    }
    task.rank = front.rank;
    take(outcome_of(task, slot, front.set, exit, false, blobs));
    clear_set(slot, front.set);
  }
  hooks.on_start(nullptr);
}

absl::StatusOr<RankExit> RankRunner::execute(const RankTask& task, int slot, BlobSource& blobs,
                                             const RankHooks& hooks, bool& timed_out) {
  const JobRun& job = *task.job;
  const fs::path run_dir = slot_dir(slot);
  RankContext context = context_for(task, run_dir, gpu_host_);
  SlotState& warm = slot_state(slot);
  PESC_RETURN_IF_ERROR(make_dirs(warm, context));
  // A gang's runner carries its meeting point (MASTER_ADDR, MASTER_PORT) in
  // its environment, and a restarted gang meets elsewhere.
  const bool reuse = job.warm_runner && !job.gang && warm.runner && warm.runner->alive() &&
                     warm.job_id == job.job_id && warm.gpus == context.gpus;
  if (!reuse) {
    release_warm(slot);
    PESC_RETURN_IF_ERROR(place_app(warm, job, context.app_dir, blobs));
  }
  if (task.checkpoint) {
    PESC_RETURN_IF_ERROR(annotate(restore_checkpoint(*task.checkpoint, context.checkpoint_dir, blobs),
                                  "cannot restore the rank's checkpoint"));
  }
  if (reuse) {
    // The runner has its launch; only what the worker put here is new.
    if (task.checkpoint) isolation_->hand_over(context.checkpoint_dir);
    return run_warm(task, slot, blobs, hooks, timed_out);
  }
  PlacedApp* placed = warm.app ? &*warm.app : nullptr;
  PESC_ASSIGN_OR_RETURN(RankLaunch launch, launch_for(job, context, placed));
  if (job.warm_runner) {
    // What the runner prints outside any rank goes beside the rank dirs.
    launch.output_file = run_dir / "runner.txt";
    PESC_ASSIGN_OR_RETURN(warm.runner, WarmRunner::start(std::move(launch)));
    warm.job_id = job.job_id;
    warm.gpus = context.gpus;
    return run_warm(task, slot, blobs, hooks, timed_out);
  }

  use_slot_launcher(slot, launch);
  absl::StatusOr<std::unique_ptr<RankProcess>> started = RankProcess::start(launch);
  if (!started.ok() && launch.launcher && !launch.launcher->alive()) {
    // The slot's launcher went between ranks, which is neither the rank's
    // fault nor a reason to fail it: this rank gets a bubblewrap of its own,
    // the next one a new launcher.
    std::cerr << "pesc worker: slot " << slot << " starts this rank in a bubblewrap of its own (slower): "
              << started.status().message() << std::endl;
    slot_state(slot).launcher.reset();
    launch.launcher.reset();
    started = RankProcess::start(launch);
  }
  PESC_ASSIGN_OR_RETURN(std::unique_ptr<RankProcess> process, std::move(started));
  if (placed != nullptr) placed->started = true;
  hooks.on_start(process.get());
  RankExit exit;
  {
    Watchdog watchdog(job, *process, context.checkpoint_dir, blobs, hooks, *this);
    exit = process->wait();
    timed_out = watchdog.finish();
  }
  hooks.on_start(nullptr);
  if (!exit.not_run.ok()) return exit.not_run;
  return exit;
}

void RankRunner::use_slot_launcher(int slot, RankLaunch& launch) {
  const std::optional<fs::path> program = isolation_->slot_launcher_for(launch);
  if (!program || !slot_launchers_work_) return;
  SlotState& warm = slot_state(slot);
  if (!warm.launcher || !warm.launcher->serves(*launch.sandbox, launch.run_as)) {
    warm.launcher.reset();
    auto started = SlotLauncher::start(*program, *launch.sandbox, launch.run_as,
                                       runs_dir_ / absl::StrCat("launcher-", slot, ".txt"));
    if (!started.ok()) {
      // Not the rank's doing: it gets a bubblewrap of its own. A machine
      // whose kernel refuses to let ranks enter a sandbox is not asked again.
      const bool never = absl::IsFailedPrecondition(started.status());
      if (never) slot_launchers_work_ = false;
      std::cerr << "pesc worker: slot " << slot << " starts " << (never ? "every rank" : "this rank")
                << " in a bubblewrap of its own (slower): " << started.status().message() << std::endl;
      return;
    }
    warm.launcher = *std::move(started);
  }
  launch.launcher = warm.launcher;
}

absl::Status RankRunner::make_dirs(SlotState& state, const RankContext& context) {
  std::error_code error;
  auto make = [&](const std::vector<fs::path>& dirs, bool& made) -> absl::Status {
    if (made) return absl::OkStatus();
    for (const fs::path& dir : dirs) {
      fs::create_directories(dir, error);
      if (error) return file_error("create", dir, error);
    }
    made = true;
    return absl::OkStatus();
  };
  PESC_RETURN_IF_ERROR(make({context.output_dir, context.checkpoint_dir}, state.dirs_made));
  if (context.spare_dirs.empty()) return absl::OkStatus();
  return make(context.spare_dirs, state.spares_made);
}

absl::Status RankRunner::place_app(SlotState& state, const JobRun& job, const fs::path& app_dir, BlobSource& blobs) {
  if (state.app && state.app->job_id == job.job_id && plain_entries(app_dir) == state.app->entries) {
    return absl::OkStatus();
  }
  state.app.reset();
  std::error_code error;
  if (fs::exists(app_dir, error)) clear_directory(app_dir, error);
  if (error) return file_error("empty", app_dir, error);
  PESC_ASSIGN_OR_RETURN(fs::path process_dir, cache_.materialize(job, blobs));
  PESC_RETURN_IF_ERROR(ProcessCache::populate(process_dir, app_dir));
  PESC_RETURN_IF_ERROR(place_shared_files(job, app_dir, blobs));
  if (job.warm_runner) return absl::OkStatus();  // its runner keeps app_dir instead
  if (auto entries = plain_entries(app_dir)) state.app = PlacedApp{.job_id = job.job_id, .entries = *std::move(entries)};
  return absl::OkStatus();
}

absl::StatusOr<RankLaunch> RankRunner::launch_for(const JobRun& job, const RankContext& context, PlacedApp* placed) {
  RankLaunch launch;
  const bool known = placed != nullptr && placed->started;
  if (known) {
    launch.argv = placed->command;
  } else {
    // A domain or entry that fails here is the job's to fix.
    PESC_ASSIGN_OR_RETURN(Domain domain, job_fault(parse_domain(job.domain)));
    fs::path entry = context.app_dir / job.entry;
    std::error_code error;
    if (!fs::exists(entry, error)) {
      return job_fault(
          absl::NotFoundError(absl::StrCat("the entry point ", job.entry, " is not in the process")));
    }
    // A missing interpreter is this worker's: another may have it.
    PESC_ASSIGN_OR_RETURN(launch.argv, interpreters_.command_for(domain, entry.string()));
    if (placed != nullptr) placed->command = launch.argv;
  }
  for (std::string& flag : pesc_flags(context)) launch.argv.push_back(std::move(flag));
  launch.environment = pesc_environment(context);
  launch.working_dir = context.app_dir;
  launch.output_file = context.output_dir / kOutputFile;
  PESC_RETURN_IF_ERROR(isolation_->apply(job, context, launch, /*app_dir_ready=*/known));
  return launch;
}

absl::StatusOr<RankExit> RankRunner::run_warm(const RankTask& task, int slot, BlobSource& blobs,
                                              const RankHooks& hooks, bool& timed_out) {
  SlotState& warm = slot_state(slot);
  const DirSet& dirs = dir_set(slot, 0);
  hooks.on_start(&warm.runner->process());
  const int64_t sent_unix_ms = now_unix_ms();
  absl::StatusOr<RankExit> exit;
  {
    Watchdog watchdog(*task.job, warm.runner->process(), dirs.checkpoint, blobs, hooks, *this);
    exit = warm.runner->run(task.rank, dirs.output, dirs.checkpoint);
    timed_out = watchdog.finish();
  }
  hooks.on_start(nullptr);
  if (exit.ok()) return exit;
  return after_runner_failed(slot, exit.status(), timed_out, sent_unix_ms);
}

absl::StatusOr<RankExit> RankRunner::after_runner_failed(int slot, absl::Status failure, bool timed_out,
                                                         int64_t rank_sent_unix_ms) {
  // A runner that failed is dead or of no use; how it ended says whether a
  // limit of the rank's killed it.
  SlotState& warm = slot_state(slot);
  warm.runner->terminate(std::chrono::milliseconds(0));
  RankExit ended = warm.runner->process().wait();
  release_warm(slot);
  // The rank ran from when its runner took it, not from the runner's start
  // (nor, killed at its timeout, from 1970): its user's fair share is
  // charged that long.
  ended.start_unix_ms = rank_sent_unix_ms;
  if (!ended.limit_exceeded.empty()) return ended;
  // The runner is the job's own process: its death or garbage on its pipe
  // is the rank's doing, not this worker's.
  if (!timed_out) return rank_fault(std::move(failure));
  RankExit killed;  // the watchdog ended the runner for the timeout
  killed.start_unix_ms = rank_sent_unix_ms;
  killed.signal = SIGKILL;
  killed.exit_code = 128 + SIGKILL;
  killed.end_unix_ms = now_unix_ms();
  return killed;
}

absl::Status RankRunner::place_shared_files(const JobRun& job, const fs::path& app_dir, BlobSource& blobs) {
  for (const SharedInput& shared : job.shared) {
    PESC_ASSIGN_OR_RETURN(fs::path cached, cache_.shared_file(shared, blobs));
    const fs::path target = app_dir / shared.name;
    std::error_code error;
    if (fs::exists(target, error)) {
      return job_fault(absl::InvalidArgumentError(
          absl::StrCat("the shared file ", shared.name, " has the name of a file of the process")));
    }
    fs::create_hard_link(cached, target, error);
    if (error) {
      error.clear();
      fs::copy_file(cached, target, error);
    }
    if (error) return absl::InternalError(absl::StrCat("cannot place shared file ", shared.name, ": ", error.message()));
  }
  return absl::OkStatus();
}

RankRunner::SlotState& RankRunner::slot_state(int slot) {
  absl::MutexLock lock(&slots_mutex_);
  auto [warm, fresh] = slots_.try_emplace(slot);  // map nodes stay put; only this slot's thread uses it
  if (fresh) {
    for (int set = 0; set < kWarmSets; ++set) {
      auto [output, checkpoint] = dirs_of_set(slot_dir(slot), set);
      warm->second.dirs[set] = {std::move(output), std::move(checkpoint)};
    }
  }
  return warm->second;
}

void RankRunner::release_warm(int slot) {
  SlotState& warm = slot_state(slot);
  if (!warm.runner) return;
  warm.runner.reset();
  warm.job_id.clear();
  warm.app.reset();
  std::error_code error;
  clear_directory(slot_dir(slot) / "app", error);
}

RankRunner::~RankRunner() = default;

absl::StatusOr<std::optional<BlobId>> RankRunner::save_checkpoint(const fs::path& checkpoint_dir,
                                                                       BlobSource& blobs) {
  PESC_ASSIGN_OR_RETURN(bool empty, archive::directory_is_empty_except(checkpoint_dir, {}));
  if (empty) return std::optional<BlobId>();
  PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-checkpoint-"));
  fs::path tar = scratch.path() / "checkpoint.tar";
  PESC_RETURN_IF_ERROR(archive::pack_directory(checkpoint_dir, tar));
  PESC_ASSIGN_OR_RETURN(BlobId blob, patiently([&] { return blobs.upload_file(tar); }));
  return std::optional<BlobId>(std::move(blob));
}

absl::Status RankRunner::restore_checkpoint(const BlobId& checkpoint, const fs::path& checkpoint_dir,
                                            BlobSource& blobs) {
  PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-checkpoint-"));
  fs::path tar = scratch.path() / "checkpoint.tar";
  PESC_RETURN_IF_ERROR(blobs.download(checkpoint, tar));
  return archive::extract(tar, checkpoint_dir);
}

absl::StatusOr<std::vector<std::string>> RankRunner::collect_output(const fs::path& output_dir,
                                                                   std::optional<PipedFile> piped,
                                                                   BlobSource& blobs, RankOutcome& outcome) {
  // What the rank left, and whether its output.txt is a plain file: a
  // rank's link named output.txt must not make the worker send back a file
  // the rank itself may not read.
  std::vector<std::string> entries;
  struct stat output_info;
  bool regular_output_txt = false;
  bool only_output_txt = false;
  auto look = [&]() -> absl::Status {
    PESC_ASSIGN_OR_RETURN(entries, directory_names(output_dir));
    regular_output_txt =
        ::lstat((output_dir / kOutputFile).c_str(), &output_info) == 0 && S_ISREG(output_info.st_mode);
    only_output_txt =
        std::all_of(entries.begin(), entries.end(), [](const std::string& name) { return name == kOutputFile; });
    return absl::OkStatus();
  };
  PESC_RETURN_IF_ERROR(look());
  // Most ranks leave a plain output.txt alone, with no link to look for.
  if (!only_output_txt || (!entries.empty() && !regular_output_txt)) {
    PESC_RETURN_IF_ERROR(leave_out_escaping_links(output_dir, outcome));
    PESC_RETURN_IF_ERROR(look());
  }
  std::string text;
  if (regular_output_txt && output_info.st_size > 0) {
    PESC_ASSIGN_OR_RETURN(text, read_file(output_dir / kOutputFile));
  }
  // An empty output.txt may stay for the next rank, which would get one
  // anyway: one file less to make and remove per rank.
  const bool keep_output_txt = regular_output_txt && text.empty();
  PESC_ASSIGN_OR_RETURN(outcome.output_txt, patiently([&] { return blobs.make_payload(text); }));
  if (keep_output_txt) std::erase(entries, std::string(kOutputFile));
  if (only_output_txt && !piped) return entries;
  std::vector<archive::MemoryFile> in_memory;
  if (piped) in_memory.push_back({std::move(piped->name), std::move(piped->bytes)});
  // With nothing but output.txt on disk, the tar holds the piped file alone.
  auto small = archive::pack_directory_in_memory(only_output_txt ? fs::path() : output_dir, {kOutputFile},
                                                 kInlinePayloadBytes, in_memory);
  if (small.ok()) {
    outcome.files_inline = *std::move(small);
    return entries;
  }
  if (!absl::IsResourceExhausted(small.status())) return small.status();
  // Too big to travel inline: the piped file joins the others on disk.
  for (const archive::MemoryFile& file : in_memory) {
    PESC_RETURN_IF_ERROR(place_file(output_dir, file));
    if (std::find(entries.begin(), entries.end(), file.name) == entries.end()) entries.push_back(file.name);
  }
  fs::path tar = output_dir.parent_path() / "output.tar";
  PESC_RETURN_IF_ERROR(archive::pack_directory(output_dir, tar, {kOutputFile}));
  std::error_code ignored;
  auto uploaded = patiently([&] { return blobs.upload_file(tar); });
  fs::remove(tar, ignored);
  if (!uploaded.ok()) return uploaded.status();
  outcome.files = *std::move(uploaded);
  return entries;
}

}  // namespace pesc
