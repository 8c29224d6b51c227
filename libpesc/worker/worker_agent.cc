#include "worker/worker_agent.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/domain.h"
#include "executor/rank_process.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.grpc.pb.h"
#include "transport/transport.h"
#include "worker/assignment_conversion.h"
#include "worker/coordinator_blobs.h"
#include "worker/coordinator_link.h"
#include "worker/disk_room.h"
#include "worker/host_load.h"
#include "worker/owner_watch.h"
#include "worker/process_cache.h"
#include "worker/rank_isolation.h"
#include "worker/rank_runner.h"

namespace pesc {
namespace fs = std::filesystem;

namespace {

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

absl::StatusOr<std::string> stable_worker_id(const fs::path& work_dir) {
  fs::path file = work_dir / "worker-id";
  if (auto existing = read_file(file); existing.ok()) {
    std::string id(absl::StripAsciiWhitespace(*existing));
    if (!id.empty()) return id;
  }
  std::string id = absl::StrCat(this_host(), "-", random_hex(3));
  PESC_RETURN_IF_ERROR(write_file_atomically(file, id + "\n", Durability::kSynced));
  std::error_code ignored;
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, ignored);  // ranks may not read it
  return id;
}

// How long a slot keeps a warm interpreter with nothing to run. An
// interpreter serves one job, and a job's next rank rarely comes after such
// a pause; ending it while the slot idles spares the next job the wait for
// its exit (tens of milliseconds for Python).
constexpr absl::Duration kWarmRunnerIdle = absl::Seconds(2);

// Kills the process group of every process whose working directory lies
// under `runs_dir`: ranks orphaned when an earlier life of this worker was
// killed. (Ranks run in their own process groups, so they outlive it.)
// What `file` holds from `offset` on, at most `max_bytes`; empty while it
// does not exist (the rank has printed nothing) or holds no more.
std::string read_from(const std::filesystem::path& file, int64_t offset, int max_bytes) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(file, error);
  if (error || offset < 0 || size <= static_cast<uintmax_t>(offset)) return "";
  const uintmax_t left = size - static_cast<uintmax_t>(offset);
  std::string bytes(std::min<uintmax_t>(left, static_cast<uintmax_t>(std::max(0, max_bytes))), '\0');
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(in.gcount() > 0 ? static_cast<size_t>(in.gcount()) : 0);
  return bytes;
}

void kill_ranks_running_in(const fs::path& runs_dir) {
  std::error_code error;
  const std::string prefix = fs::weakly_canonical(runs_dir, error).string() + "/";
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::error_code unreadable;
    const std::string cwd = fs::read_symlink(entry.path() / "cwd", unreadable).string() + "/";
    if (unreadable || cwd.rfind(prefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (const pid_t group = ::getpgid(pid); group > 1) ::kill(-group, SIGKILL);
    ::kill(pid, SIGKILL);
  }
}

// Whether any rank of it failed for the worker's own fault (its disk, say).
bool blames_worker(const v1::RankFinished& finished) {
  auto worker_fault = [](const v1::RankResult& result) {
    return result.failure_class() == v1::FAILURE_CLASS_WORKER;
  };
  return worker_fault(finished.result()) || std::any_of(finished.chunk().begin(), finished.chunk().end(), worker_fault);
}

// A TCP port free on this host now (the kernel's pick), for a gang's rank 0
// to listen on; 0 when there is none.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// The built-in domains whose interpreter this worker cannot start for the
// ranks' user, and why: found once at start, so that the coordinator sends
// their jobs to other workers instead of failing their ranks here.
std::vector<v1::UnavailableDomain> find_unavailable_domains(InterpreterTable& interpreters,
                                                            const RankIsolation& isolation) {
  constexpr char kAnyEntry[] = "/entry";
  std::vector<v1::UnavailableDomain> unavailable;
  for (const std::string& name : builtin_domain_names()) {
    absl::StatusOr<Domain> domain = parse_domain(name);
    if (!domain.ok()) continue;
    absl::StatusOr<std::vector<std::string>> command = interpreters.command_for(*domain, kAnyEntry);
    if (command.ok() && command->front() == kAnyEntry) continue;  // runs the entry itself
    absl::Status runnable = command.ok() ? isolation.check_runnable(command->front()) : command.status();
    if (runnable.ok()) continue;
    v1::UnavailableDomain& entry = unavailable.emplace_back();
    entry.set_domain(name);
    entry.set_why(std::string(runnable.message()));
  }
  return unavailable;
}

}  // namespace

struct WorkerAgent::Impl {
  WorkerOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Workers::Stub> workers_stub;
  std::unique_ptr<BlobSource> blobs;
  std::unique_ptr<ProcessCache> cache;
  std::unique_ptr<InterpreterTable> interpreters;
  std::vector<v1::UnavailableDomain> unavailable_domains;  // told at every registration
  HostCpu host_cpu ABSL_GUARDED_BY(mutex){"/proc/stat"};  // for heartbeats
  std::unique_ptr<RankRunner> runner;
  std::unique_ptr<OwnerWatch> owner_watch;  // null unless owners_first
  std::unique_ptr<DiskRoom> disk_room;

  absl::Mutex mutex;
  bool stopping ABSL_GUARDED_BY(mutex) = false;
  std::deque<RankTask> queue ABSL_GUARDED_BY(mutex);
  // The jobs this stream described and has not told to forget, by id: the
  // coordinator describes a job with its first assignment on a stream and
  // mirrors what the worker keeps (registry/outbox.h). A new stream starts
  // with none; queued and running tasks hold their own job's.
  std::map<std::string, std::shared_ptr<const JobRun>> described ABSL_GUARDED_BY(mutex);
  std::map<int64_t, RankProcess*> running ABSL_GUARDED_BY(mutex);  // attempt -> process (null while preparing)
  std::map<int64_t, std::vector<int>> running_gpus ABSL_GUARDED_BY(mutex);  // of running attempts that have some
  std::set<int64_t> cancelled ABSL_GUARDED_BY(mutex);
  // The output.txt each running one-rank attempt writes, for followers (`pesc logs -f`).
  std::map<int64_t, std::filesystem::path> output_files ABSL_GUARDED_BY(mutex);
  // Why the work dir's disk has no room for ranks, when it has none.
  std::string disk_short ABSL_GUARDED_BY(mutex);
  // Why it drains (its allocation is about to end); empty until then.
  std::string draining ABSL_GUARDED_BY(mutex);
  // When it last ran, held or owed anything.
  absl::Time busy_at ABSL_GUARDED_BY(mutex) = absl::Now();
  std::map<int64_t, v1::RankFinished> unacknowledged ABSL_GUARDED_BY(mutex);
  // Gang attempts holding a slot until the coordinator starts their gang:
  // attempt -> the port offered for it.
  std::map<int64_t, int> gang_waiting ABSL_GUARDED_BY(mutex);
  std::map<int64_t, v1::StartGang> gang_started ABSL_GUARDED_BY(mutex);  // their starts, once come
  // Results waiting for the sender thread. A result goes at once when no
  // batch awaits its acknowledgement; those that come while one does go
  // together in the next batch, so a busy worker sends about one message
  // per commit of the coordinator and an idle one adds no delay.
  std::deque<int64_t> outgoing ABSL_GUARDED_BY(mutex);
  // The attempts of the batch awaiting its acknowledgement (the coordinator
  // acknowledges a batch's results together), and until when the sender
  // waits for it: a batch the coordinator could not store is never
  // acknowledged, and goes again later by itself (resends).
  std::set<int64_t> in_flight ABSL_GUARDED_BY(mutex);
  absl::Time in_flight_until ABSL_GUARDED_BY(mutex) = absl::InfinitePast();
  // A result sent and not acknowledged goes again after a while, backing
  // off, on the same stream too: a coordinator that could not store it (a
  // full disk) does not acknowledge it, and waits for it to come again.
  struct Resend {
    absl::Time at;
    absl::Duration after;
  };
  std::map<int64_t, Resend> resends ABSL_GUARDED_BY(mutex);
  grpc::ClientContext* stream_context ABSL_GUARDED_BY(mutex) = nullptr;
  std::chrono::milliseconds heartbeat ABSL_GUARDED_BY(mutex){1000};
  // A heartbeat goes only when it has news or when this long has passed
  // since the last one (zero: at every heartbeat): a thousand workers, idle
  // or busy, then cost their coordinator next to nothing; a busy one's
  // results keep it heard of too.
  std::chrono::milliseconds idle_keepalive ABSL_GUARDED_BY(mutex){0};
  v1::Heartbeat told ABSL_GUARDED_BY(mutex);  // the last heartbeat sent
  absl::Time told_at ABSL_GUARDED_BY(mutex) = absl::InfinitePast();

  absl::Mutex link_mutex;
  // The registered stream, null between streams. send() is never called
  // under `mutex`, which handle() takes on the stream's thread.
  std::shared_ptr<CoordinatorLink> link ABSL_GUARDED_BY(link_mutex);

  std::vector<std::thread> threads;

  void connection_loop();
  absl::Status run_session(bool& registered);
  // The coordinator's answer to a registration: the stream now carries
  // messages both ways.
  void registered_on(CoordinatorLink& link, const v1::Registered& registered);
  void tell(const std::string& status) {
    if (options.on_status) options.on_status(status);
  }
  void resume(const v1::Registered& registered);
  void handle(const v1::CoordinatorMessage& message);
  // Answers a follower's read of a running rank's output.txt.
  void answer_read(const v1::ReadOutput& read);
  void slot_loop(int slot);
  // Holds the slot until the gang starts (true, with the task told
  // where rank 0 is) or the attempt is cancelled or the worker stops.
  bool await_gang_start(RankTask& task);
  // Takes in a batch of assignments with the jobs it describes; returns
  // those of jobs never described, which the worker cannot run.
  std::vector<int64_t> take_assignments(const v1::Assignments& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  void send_gang_ready(int64_t attempt_id, int port);
  void heartbeat_loop();
  enum class Beat { kAlways, kIfNews };
  void send_heartbeat(const OwnerState& owner, const std::vector<int64_t>& returned = {}, Beat when = Beat::kAlways);
  // Whether a beat says something the last one did not, or
  // is due as a keep-alive.
  bool worth_sending(const v1::Heartbeat& beat) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // A busy host starts no more ranks: the ones waiting here go back.
  void owner_changed(const OwnerState& owner);
  // Empties the queue: the attempts it held, for a heartbeat to give back.
  std::vector<int64_t> take_back_queue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Why the worker takes no ranks: its owner's reason, its disk's, or both.
  std::string paused_reason(const OwnerState& owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Looks at the work dir's disk. While it is short the worker is paused,
  // and the ranks waiting here go back to the coordinator with `taken` (an
  // attempt a slot holds but has not started); once there is room again the
  // worker resumes. Either change is told to the coordinator at once.
  // True while the disk is short.
  bool check_disk_room(std::optional<int64_t> taken = std::nullopt);
  // Starts draining once the allocation's end is near: the ranks waiting
  // here go back to the coordinator at once.
  void check_allocation_end();
  bool idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    return running.empty() && queue.empty() && unacknowledged.empty();
  }
  // Not for the owner watch's own thread, which may run before it is set.
  OwnerState owner_state() { return owner_watch ? owner_watch->state() : OwnerState{}; }
  std::set<pid_t> rank_sessions();
  void sender_loop();
  // When the next result is due to go again; InfiniteFuture when none is.
  absl::Time next_resend() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  // Puts the unacknowledged results that are due in line again.
  void queue_due_resends() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  void schedule_resend(int64_t attempt_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex);
  bool send(const v1::WorkerMessage& message);
  void report(v1::RankFinished finished);
  // Runs the task's rank, or each rank of its chunk in turn; stops
  // short when the attempt is cancelled.
  v1::RankFinished run_task(RankTask& task, int slot, const RankHooks& hooks);
  void cancel(int64_t attempt_id);
};

bool WorkerAgent::Impl::send(const v1::WorkerMessage& message) {
  std::shared_ptr<CoordinatorLink> current;
  {
    absl::MutexLock lock(&link_mutex);
    current = link;
  }
  return current != nullptr && current->send(message);
}

void WorkerAgent::Impl::connection_loop() {
  auto backoff = std::chrono::milliseconds(100);
  bool was_connected = true;  // so the first failure is reported
  while (true) {
    {
      absl::MutexLock lock(&mutex);
      if (stopping) return;
    }
    auto started = std::chrono::steady_clock::now();
    bool registered = false;
    absl::Status ended = run_session(registered);
    if (registered || was_connected) {
      const bool refused = ended.code() == absl::StatusCode::kAlreadyExists ||
                           ended.code() == absl::StatusCode::kPermissionDenied ||
                           ended.code() == absl::StatusCode::kUnauthenticated;
      std::optional<std::string> mistake;
      if (!registered && ended.code() == absl::StatusCode::kUnavailable && options.diagnose_unreachable) {
        mistake = options.diagnose_unreachable();
      }
      tell(mistake ? absl::StrCat("cannot talk to the coordinator: ", *mistake, "; retrying")
                   : absl::StrCat(registered ? "lost the coordinator ("
                                  : refused  ? "the coordinator refuses this worker ("
                                             : "cannot reach the coordinator (",
                                  ended.message(), "); retrying"));
    }
    was_connected = registered;
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(5)) backoff = std::chrono::milliseconds(100);
    absl::MutexLock lock(&mutex);
    mutex.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(backoff));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

// One connection: register, resend unacknowledged results, then follow
// the coordinator's messages until the stream breaks.
absl::Status WorkerAgent::Impl::run_session(bool& registered) {
  grpc::ClientContext context;
  v1::WorkerMessage hello;
  v1::RegisterWorker& registration = *hello.mutable_register_();
  registration.set_worker_id(options.worker_id);
  registration.set_host(options.host);
  registration.set_slots(options.slots);
  for (const std::string& room : options.rooms) registration.add_rooms(room);
  *registration.mutable_gpus() = {options.gpus.begin(), options.gpus.end()};
  const OwnerState owner = owner_state();
  *registration.mutable_unavailable_domains() = {unavailable_domains.begin(), unavailable_domains.end()};
  registration.set_version(PESC_VERSION);
  for (const std::string& domain : builtin_domain_names()) {
    if (std::none_of(unavailable_domains.begin(), unavailable_domains.end(),
                     [&](const v1::UnavailableDomain& unavailable) { return unavailable.domain() == domain; })) {
      registration.add_domains(domain);
    }
  }
  {
    absl::MutexLock lock(&mutex);
    if (stopping) return absl::CancelledError();
    registration.set_paused_reason(paused_reason(owner));
    registration.set_end_unix_ms(options.end_unix_ms);
    stream_context = &context;
    for (const auto& [attempt, process] : running) registration.add_attempts_in_hand(attempt);
    described.clear();  // the coordinator describes every job again on the new stream
    for (const RankTask& queued : queue) registration.add_attempts_in_hand(queued.attempt_id);
    for (const auto& [attempt, gpus] : running_gpus) {
      v1::HeldGpus& held = *registration.add_held_gpus();
      held.set_attempt_id(attempt);
      *held.mutable_gpus() = {gpus.begin(), gpus.end()};
    }
    for (const RankTask& queued : queue) {
      if (queued.gpus.empty()) continue;
      v1::HeldGpus& held = *registration.add_held_gpus();
      held.set_attempt_id(queued.attempt_id);
      *held.mutable_gpus() = {queued.gpus.begin(), queued.gpus.end()};
    }
    for (const auto& [attempt, result] : unacknowledged) registration.add_attempts_in_hand(attempt);
  }
  // Read by gRPC's thread alone until wait() returns.
  bool answered = false;
  std::shared_ptr<CoordinatorLink> connection = CoordinatorLink::open(
      *workers_stub, context, std::move(hello),
      [&](CoordinatorLink& opened, const v1::CoordinatorMessage& message) {
        if (answered) return handle(message);
        answered = true;
        if (!message.has_registered()) return context.TryCancel();
        registered = true;
        registered_on(opened, message.registered());
      });
  // A coordinator that refused the worker (a missing or revoked token, say)
  // ends the stream with its reason.
  const grpc::Status ended = connection->wait();
  {
    absl::MutexLock lock(&link_mutex);
    link = nullptr;
  }
  {
    absl::MutexLock lock(&mutex);
    stream_context = nullptr;
  }
  return to_absl(ended);
}

void WorkerAgent::Impl::registered_on(CoordinatorLink& registered_link, const v1::Registered& registered) {
  tell("connected to the coordinator");
  {
    absl::MutexLock lock(&mutex);
    heartbeat = std::chrono::milliseconds(std::max(100, registered.heartbeat_ms()));
    idle_keepalive = std::chrono::milliseconds(std::max(0, registered.idle_keepalive_ms()));
    told_at = absl::InfinitePast();  // a new session hears everything once
  }
  {
    absl::MutexLock lock(&link_mutex);
    link = registered_link.shared_from_this();
  }
  resume(registered);
}

// Drops what the coordinator no longer wants; everything else not yet
// acknowledged goes again, now that the stream is up (a result the
// coordinator already has is simply acknowledged again).
void WorkerAgent::Impl::resume(const v1::Registered& registered) {
  if (options.isolation) options.isolation->hide(registered.state_dir());
  std::map<int64_t, int> gangs_to_start;
  {
    absl::MutexLock lock(&mutex);
    for (int64_t stale : registered.stale_attempts()) {
      unacknowledged.erase(stale);
      std::erase_if(queue, [&](const RankTask& task) { return task.attempt_id == stale; });
      if (running.contains(stale)) cancel(stale);
    }
    outgoing.clear();
    in_flight.clear();
    for (const auto& [attempt, result] : unacknowledged) outgoing.push_back(attempt);
    gangs_to_start = gang_waiting;
  }
  // The coordinator may have missed these, or its start may have been lost.
  for (const auto& [attempt, port] : gangs_to_start) send_gang_ready(attempt, port);
}

void WorkerAgent::Impl::handle(const v1::CoordinatorMessage& message) {
  if (message.has_read_output()) return answer_read(message.read_output());
  if (message.has_assign_batch()) {
    std::vector<int64_t> undescribed;
    {
      absl::MutexLock lock(&mutex);
      undescribed = take_assignments(message.assign_batch());
    }
    // Never so with a coordinator that keeps the protocol; given back, they
    // run elsewhere.
    if (!undescribed.empty()) send_heartbeat(owner_state(), undescribed);
    return;
  }
  absl::MutexLock lock(&mutex);
  if (message.has_forget_jobs()) {
    for (const std::string& job_id : message.forget_jobs().job_ids()) described.erase(job_id);
  } else if (message.has_cancel()) {
    for (int64_t attempt : message.cancel().attempt_ids()) cancel(attempt);
  } else if (message.has_ack()) {
    for (int64_t attempt : message.ack().attempt_ids()) {
      unacknowledged.erase(attempt);
      if (in_flight.contains(attempt)) in_flight.clear();  // its batch is in: the next may go
    }
  } else if (message.has_start_gang()) {
    for (int64_t attempt : message.start_gang().attempt_ids()) {
      if (gang_waiting.contains(attempt)) gang_started[attempt] = message.start_gang();
    }
  }
}

void WorkerAgent::Impl::answer_read(const v1::ReadOutput& read) {
  v1::WorkerMessage message;
  v1::OutputRead& answer = *message.mutable_output_read();
  answer.set_request_id(read.request_id());
  std::filesystem::path file;
  {
    absl::MutexLock lock(&mutex);
    auto running_file = output_files.find(read.attempt_id());
    if (running_file != output_files.end()) file = running_file->second;
  }
  if (file.empty()) {
    answer.set_gone(true);
  } else {
    answer.set_data(read_from(file, read.offset(), read.max_bytes()));
  }
  send(message);  // lost with the stream: the follower asks again
}

void WorkerAgent::Impl::send_gang_ready(int64_t attempt_id, int port) {
  v1::WorkerMessage message;
  message.mutable_gang_ready()->set_attempt_id(attempt_id);
  message.mutable_gang_ready()->set_free_port(port);
  send(message);  // if the stream is down, resume() says it again
}

std::vector<int64_t> WorkerAgent::Impl::take_assignments(const v1::Assignments& batch) {
  for (const v1::JobDescription& job : batch.jobs()) described[job.job_id()] = job_run_from(job);
  std::vector<int64_t> undescribed;
  for (const v1::Assignment& assignment : batch.assignments()) {
    auto job = described.find(assignment.job_id());
    if (job == described.end()) {
      std::cerr << "pesc worker: the coordinator sent attempt " << assignment.attempt_id() << " of job "
                << assignment.job_id() << " without describing the job; giving it back" << std::endl;
      undescribed.push_back(assignment.attempt_id());
      continue;
    }
    queue.push_back(task_from(assignment, job->second));
  }
  return undescribed;
}

bool WorkerAgent::Impl::await_gang_start(RankTask& task) {
  const int64_t attempt = task.attempt_id;
  const int port = free_port();
  {
    absl::MutexLock lock(&mutex);
    gang_waiting[attempt] = port;
  }
  send_gang_ready(attempt, port);
  absl::MutexLock lock(&mutex);
  auto decided = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return stopping || cancelled.contains(attempt) || gang_started.contains(attempt);
  };
  mutex.Await(absl::Condition(&decided));
  gang_waiting.erase(attempt);
  auto start = gang_started.find(attempt);
  if (start == gang_started.end()) return false;
  task.master_addr = start->second.master_addr();
  task.master_port = start->second.master_port();
  gang_started.erase(start);
  return !stopping && !cancelled.contains(attempt);
}

void WorkerAgent::Impl::cancel(int64_t attempt_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
  std::erase_if(queue, [&](const RankTask& task) { return task.attempt_id == attempt_id; });
  auto running_rank = running.find(attempt_id);
  if (running_rank == running.end()) return;
  cancelled.insert(attempt_id);
  if (running_rank->second != nullptr) running_rank->second->terminate(options.kill_grace);
}

void WorkerAgent::Impl::slot_loop(int slot) {
  while (true) {
    RankTask task;
    bool idle = false;
    {
      absl::MutexLock lock(&mutex);
      auto has_work = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping || !queue.empty(); };
      idle = !mutex.AwaitWithTimeout(absl::Condition(&has_work), kWarmRunnerIdle);
      if (stopping) return;
      if (!idle) {
        task = std::move(queue.front());
        queue.pop_front();
        running[task.attempt_id] = nullptr;
        if (task.rank_count <= 1) output_files[task.attempt_id] = runner->output_file(slot);
        if (!task.gpus.empty()) running_gpus[task.attempt_id] = task.gpus;
      }
    }
    if (idle) {
      // Nothing to run for a while: a warm interpreter kept for a finished
      // job goes.
      runner->release_warm(slot);
      continue;
    }
    const int64_t attempt = task.attempt_id;
    if (check_disk_room(attempt)) continue;  // given back: it runs elsewhere
    if (task.job->gang && !await_gang_start(task)) {
      absl::MutexLock lock(&mutex);
      running.erase(attempt);
      output_files.erase(attempt);
      cancelled.erase(attempt);
      continue;
    }
    RankHooks hooks;
    hooks.on_start = [&](RankProcess* process) {
      absl::MutexLock lock(&mutex);
      running[attempt] = process;
      // A cancel that came while the rank was being prepared.
      if (process != nullptr && (cancelled.contains(attempt) || stopping)) process->terminate(options.kill_grace);
    };
    hooks.on_checkpoint = [&](const BlobId& checkpoint) {
      v1::WorkerMessage message;
      message.mutable_checkpoint()->set_attempt_id(attempt);
      *message.mutable_checkpoint()->mutable_checkpoint() = to_proto(checkpoint);
      send(message);
    };
    v1::RankFinished finished = run_task(task, slot, hooks);
    // Paused before the result goes, so the coordinator sends no more ranks
    // to a disk that failed this one.
    if (blames_worker(finished)) check_disk_room();
    bool stopped_for_a_cancel;
    {
      absl::MutexLock lock(&mutex);
      running.erase(attempt);
      running_gpus.erase(attempt);
      output_files.erase(attempt);
      stopped_for_a_cancel = cancelled.erase(attempt) > 0;
    }
    // A rank stopped for a cancel still sends what it had written, which
    // the coordinator keeps when the cancel was its job's; a stopped chunk
    // sends nothing.
    if (stopped_for_a_cancel) finished.mutable_result()->set_state(v1::RANK_STATE_CANCELLED);
    if (!stopped_for_a_cancel || finished.chunk_size() == 0) report(std::move(finished));
    runner->reset_slot(slot);
  }
}

v1::RankFinished WorkerAgent::Impl::run_task(RankTask& task, int slot, const RankHooks& hooks) {
  v1::RankFinished finished;
  finished.set_attempt_id(task.attempt_id);
  if (task.rank_count <= 1) {
    *finished.mutable_result() = result_of(runner->run(task, slot, *blobs, hooks));
    return finished;
  }
  // A chunk's results travel in one message; past this the chunk stops
  // short and the coordinator queues the ranks it did not run again.
  constexpr size_t kChunkBytes = 1 << 20;
  size_t bytes = 0;
  auto keep_going = [&] {
    if (!disk_room->shortage().empty()) return false;  // the rest of the chunk runs elsewhere
    absl::MutexLock lock(&mutex);
    return bytes < kChunkBytes && !stopping && !cancelled.contains(task.attempt_id);
  };
  if (RankRunner::can_pipeline(task)) {
    runner->run_chunk(task, slot, *blobs, hooks, keep_going, [&](const RankOutcome& outcome) {
      v1::RankResult result = result_of(outcome);
      bytes += result.ByteSizeLong();
      *finished.add_chunk() = std::move(result);
    });
    return finished;
  }
  const int first = task.rank;
  for (int rank = first; rank < first + task.rank_count; ++rank) {
    if (rank > first) {
      runner->reset_slot(slot);
      if (!keep_going()) break;
    }
    task.rank = rank;
    v1::RankResult& result = *finished.add_chunk();
    result = result_of(runner->run(task, slot, *blobs, hooks));
    bytes += result.ByteSizeLong();
  }
  return finished;
}

void WorkerAgent::Impl::report(v1::RankFinished finished) {
  absl::MutexLock lock(&mutex);
  outgoing.push_back(finished.attempt_id());
  unacknowledged[finished.attempt_id()] = std::move(finished);
}

void WorkerAgent::Impl::sender_loop() {
  // Well under gRPC's 4 MiB message cap; one result is at most ~512 KiB.
  constexpr size_t kBatchBytes = 1 << 20;
  // How long a batch may hold back the next one without being acknowledged.
  constexpr absl::Duration kAckPatience = absl::Milliseconds(100);
  while (true) {
    v1::WorkerMessage message;
    {
      absl::MutexLock lock(&mutex);
      auto may_send = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping || (!outgoing.empty() && in_flight.empty());
      };
      const absl::Time deadline =
          in_flight.empty() ? next_resend() : std::min(next_resend(), in_flight_until);
      mutex.AwaitWithDeadline(absl::Condition(&may_send), deadline);
      if (stopping) return;
      if (!in_flight.empty() && absl::Now() >= in_flight_until) in_flight.clear();
      queue_due_resends();
      if (outgoing.empty() || !in_flight.empty()) continue;
      size_t bytes = 0;
      while (!outgoing.empty() && bytes < kBatchBytes) {
        auto result = unacknowledged.find(outgoing.front());
        outgoing.pop_front();
        if (result == unacknowledged.end()) continue;  // acknowledged meanwhile
        *message.mutable_finished_batch()->add_finished() = result->second;
        bytes += result->second.ByteSizeLong();
        in_flight.insert(result->first);
        schedule_resend(result->first);
      }
      in_flight_until = absl::Now() + kAckPatience;
    }
    // If the stream is down, the next session sends these again.
    if (message.has_finished_batch()) send(message);
  }
}

absl::Time WorkerAgent::Impl::next_resend() {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [attempt, resend] : resends) next = std::min(next, resend.at);
  return next;
}

void WorkerAgent::Impl::queue_due_resends() {
  const absl::Time now = absl::Now();
  for (auto resend = resends.begin(); resend != resends.end();) {
    if (!unacknowledged.contains(resend->first)) {
      resend = resends.erase(resend);
      continue;
    }
    if (resend->second.at <= now && std::find(outgoing.begin(), outgoing.end(), resend->first) == outgoing.end()) {
      outgoing.push_back(resend->first);
    }
    ++resend;
  }
}

void WorkerAgent::Impl::schedule_resend(int64_t attempt_id) {
  constexpr absl::Duration kFirstResend = absl::Seconds(2);
  constexpr absl::Duration kLatestResend = absl::Seconds(15);
  auto [resend, added] = resends.try_emplace(attempt_id, Resend{.at = {}, .after = kFirstResend});
  if (!added) resend->second.after = std::min(2 * resend->second.after, kLatestResend);
  resend->second.at = absl::Now() + resend->second.after;
}

void WorkerAgent::Impl::heartbeat_loop() {
  while (true) {
    {
      absl::MutexLock lock(&mutex);
      mutex.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(heartbeat));
      if (stopping) return;
      if (!idle()) busy_at = absl::Now();
    }
    check_disk_room();
    check_allocation_end();
    send_heartbeat(owner_state(), {}, Beat::kIfNews);
  }
}

void WorkerAgent::Impl::send_heartbeat(const OwnerState& owner, const std::vector<int64_t>& returned, Beat when) {
  v1::WorkerMessage beat;
  {
    absl::MutexLock lock(&mutex);
    v1::Heartbeat& news = *beat.mutable_heartbeat();
    news.set_running(static_cast<int>(running.size()));
    news.set_paused_reason(paused_reason(owner));
    news.set_host_cpu_percent(host_cpu.sample().value_or(-1));
    news.set_throttled_reason(owner.throttled);
    if (when == Beat::kIfNews && !worth_sending(news)) return;
    told = news;
    told_at = absl::Now();
  }
  *beat.mutable_heartbeat()->mutable_returned_attempts() = {returned.begin(), returned.end()};
  send(beat);
}

bool WorkerAgent::Impl::worth_sending(const v1::Heartbeat& beat) {
  // A move of the host's CPU smaller than this waits for the keep-alive: the
  // figure is for people watching the dashboard, and a host busy with other
  // work moves it by a few points every second.
  constexpr double kCpuMoveWorthABeat = 25;
  if (idle_keepalive.count() == 0) return true;
  // Beats come at heartbeat ticks: the one nearest the keep-alive goes.
  if (absl::Now() - told_at + absl::FromChrono(heartbeat) / 2 >= absl::FromChrono(idle_keepalive)) return true;
  const bool cpu_moved = (told.host_cpu_percent() < 0) != (beat.host_cpu_percent() < 0) ||
                         std::abs(told.host_cpu_percent() - beat.host_cpu_percent()) >= kCpuMoveWorthABeat;
  // How many ranks run is no news: the coordinator knows it from its
  // assignments and the results.
  return cpu_moved || told.paused_reason() != beat.paused_reason() || told.throttled_reason() != beat.throttled_reason();
}

void WorkerAgent::Impl::owner_changed(const OwnerState& owner) {
  std::vector<int64_t> returned;
  if (!owner.paused.empty()) {
    absl::MutexLock lock(&mutex);
    returned = take_back_queue();
  }
  send_heartbeat(owner, returned);
}

std::vector<int64_t> WorkerAgent::Impl::take_back_queue() {
  // Should the beat that gives them back not arrive, the next registration
  // leaves them out of attempts_in_hand, and the coordinator places them
  // elsewhere all the same.
  std::vector<int64_t> returned;
  for (const RankTask& queued : queue) returned.push_back(queued.attempt_id);
  queue.clear();
  return returned;
}

std::string WorkerAgent::Impl::paused_reason(const OwnerState& owner) {
  std::vector<std::string> reasons;
  for (const std::string* reason : std::initializer_list<const std::string*>{&owner.paused, &disk_short, &draining}) {
    if (!reason->empty()) reasons.push_back(*reason);
  }
  return absl::StrJoin(reasons, "; ");
}

void WorkerAgent::Impl::check_allocation_end() {
  if (options.end_unix_ms <= 0) return;
  const absl::Time end = absl::FromUnixMillis(options.end_unix_ms);
  if (absl::Now() < end - absl::FromChrono(options.drain_before)) return;
  std::vector<int64_t> returned;
  {
    absl::MutexLock lock(&mutex);
    if (!draining.empty()) return;
    draining = absl::StrCat("draining: its batch allocation ends at ",
                            absl::FormatTime("%H:%M:%S", end, absl::LocalTimeZone()));
    returned = take_back_queue();
  }
  tell(absl::StrCat("draining: the allocation ends at ", absl::FormatTime(end), "; ", returned.size(),
                    " waiting ranks go back to the coordinator"));
  send_heartbeat(owner_state(), returned);
}

bool WorkerAgent::Impl::check_disk_room(std::optional<int64_t> taken) {
  std::string before;
  {
    absl::MutexLock lock(&mutex);
    before = disk_short;
  }
  const std::string shortage = disk_room->shortage(before);
  std::vector<int64_t> returned;
  bool turned;
  {
    absl::MutexLock lock(&mutex);
    turned = shortage.empty() != disk_short.empty();
    disk_short = shortage;
    if (!shortage.empty()) {
      returned = take_back_queue();
      if (taken) {
        returned.push_back(*taken);
        running.erase(*taken);
        running_gpus.erase(*taken);
        output_files.erase(*taken);
        cancelled.erase(*taken);
      }
    }
  }
  if (turned) tell(shortage.empty() ? "the disk has room again: taking ranks" : absl::StrCat("paused: ", shortage));
  if (turned || !returned.empty()) send_heartbeat(owner_state(), returned);
  return !shortage.empty();
}

std::set<pid_t> WorkerAgent::Impl::rank_sessions() {
  absl::MutexLock lock(&mutex);
  std::set<pid_t> sessions;
  for (const auto& [attempt, process] : running) {
    if (process != nullptr) sessions.insert(process->pid());  // ranks lead sessions of their own
  }
  return sessions;
}

absl::StatusOr<std::unique_ptr<WorkerAgent>> WorkerAgent::start(WorkerOptions options,
                                                                std::shared_ptr<grpc::Channel> channel) {
  if (options.slots < 1) return absl::InvalidArgumentError("a worker needs at least one slot (--slots)");
  std::error_code error;
  // Ranks run in other directories; their paths must not depend on ours.
  options.work_dir = fs::absolute(options.work_dir, error);
  fs::create_directories(options.work_dir / "runs", error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot use the work directory ", options.work_dir.string(), ": ", error.message()));
  }
  // Leftovers of a previous life of this worker are of no use now: its
  // ranks were given to other workers when it was lost.
  kill_ranks_running_in(options.work_dir / "runs");
  (void)remove_tree(options.work_dir / "runs");
  fs::create_directories(options.work_dir / "runs", error);
  if (options.worker_id.empty()) {
    PESC_ASSIGN_OR_RETURN(options.worker_id, stable_worker_id(options.work_dir));
  }
  if (options.host.empty()) options.host = this_host();

  auto impl = std::make_unique<Impl>();
  PESC_ASSIGN_OR_RETURN(impl->cache, ProcessCache::open(options.work_dir / "cache"));
  impl->interpreters = std::make_unique<InterpreterTable>(options.interpreters);
  impl->disk_room = std::make_unique<DiskRoom>(options.work_dir, options.disk_reserve_bytes);
  {
    absl::MutexLock lock(&impl->mutex);
    impl->disk_short = impl->disk_room->shortage();  // so its first registration says so
  }
  impl->unavailable_domains = find_unavailable_domains(
      *impl->interpreters, options.isolation ? *options.isolation : *RankIsolation::limits_only());
  impl->runner = std::make_unique<RankRunner>(options.work_dir / "runs", *impl->interpreters, *impl->cache,
                                              *impl->disk_room, options.isolation, !options.gpus.empty());
  impl->options = std::move(options);
  impl->channel = std::move(channel);
  impl->workers_stub = v1::Workers::NewStub(impl->channel);
  impl->blobs = std::make_unique<CoordinatorBlobs>(impl->channel);
  Impl* raw = impl.get();
  if (raw->options.owners_first) {
    PESC_ASSIGN_OR_RETURN(
        raw->owner_watch,
        OwnerWatch::start(raw->options.owner_config,
                          {.rank_sessions = [raw] { return raw->rank_sessions(); },
                           .on_change = [raw](const OwnerState& owner) { raw->owner_changed(owner); },
                           .on_note = [raw](const std::string& note) { raw->tell(note); }}));
  }
  for (const v1::UnavailableDomain& domain : raw->unavailable_domains) {
    raw->tell(absl::StrCat("cannot run ranks of the ", domain.domain(), " domain: ", domain.why()));
  }
  for (int slot = 0; slot < raw->options.slots; ++slot) {
    raw->threads.emplace_back([raw, slot] { raw->slot_loop(slot); });
  }
  raw->threads.emplace_back([raw] { raw->heartbeat_loop(); });
  raw->threads.emplace_back([raw] { raw->sender_loop(); });
  raw->threads.emplace_back([raw] { raw->connection_loop(); });
  return std::unique_ptr<WorkerAgent>(new WorkerAgent(std::move(impl)));
}

WorkerAgent::WorkerAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerAgent::~WorkerAgent() { stop(); }

const std::string& WorkerAgent::id() const { return impl_->options.worker_id; }

absl::Duration WorkerAgent::idle_for() {
  absl::MutexLock lock(&impl_->mutex);
  return impl_->idle() ? absl::Now() - impl_->busy_at : absl::ZeroDuration();
}

bool WorkerAgent::drained() {
  absl::MutexLock lock(&impl_->mutex);
  return !impl_->draining.empty() && impl_->idle();
}

void WorkerAgent::stop() {
  {
    absl::MutexLock lock(&impl_->mutex);
    if (impl_->stopping && impl_->threads.empty()) return;
    impl_->stopping = true;
    for (auto& [attempt, process] : impl_->running) {
      if (process != nullptr) process->terminate(std::chrono::milliseconds(0));
    }
    if (impl_->stream_context != nullptr) impl_->stream_context->TryCancel();
  }
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  impl_->owner_watch.reset();  // after the threads that ask it
}

}  // namespace pesc
