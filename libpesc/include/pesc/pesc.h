#ifndef PESC_PESC_H_
#define PESC_PESC_H_

// pesc: run a sequential program many times, as ranks 0..N-1, on a farm of
// machines, and get every rank's output back in rank order.
//
// @code
//   pesc::Farm farm("python");                  // embedded local farm
//   pesc::Job job = farm.map("sim.py", 100, {"3", "0.5"});
//   pesc::Results results = job.wait();
//   std::cout << results.output();              // every output.txt, rank order
//   results.save("out/");                       // out/rank_0/..., out/output.txt
// @endcode
//
// With FarmOptions::coordinator (or PESC_COORDINATOR) set, the same calls use
// a running pesc-coordinator and its workers instead.
//
// Errors are reported by throwing pesc::Error. A Farm, a Job and Results may
// be used from one thread at a time each; distinct objects from distinct
// threads.

// The version of pesc, set here and only here: CMake, the executables
// (--version), the Python package and the R package's DESCRIPTION read it
// from this line (tests/version/check_versions.sh checks they agree).
#define PESC_VERSION "0.1.0"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pesc {

// Mirrors absl/gRPC status codes, so a code means the same everywhere.
enum class ErrorCode {
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// A batch system's nodes as the farm of a session (a notebook on a login
// node): the Farm starts a coordinator inside this process that listens at
// `listen` with a generated token and TLS, submits pesc-worker pilots for
// the session's ranks, and cancels them when the session ends (README:
// "From a notebook on the cluster").
struct PoolOptions {
  std::string batch_system = "slurm";
  std::string partition;  // empty: the batch system's default
  std::chrono::seconds time_limit{3600};  // each pilot's walltime
  int max_workers = 4;                    // pilots at once
  int slots_per_worker = 1;               // ranks each pilot runs at once
  std::chrono::seconds idle_timeout{300};  // a pilot idle this long leaves
  std::vector<std::string> submit_args;  // more arguments for the submit command (sbatch)
  std::vector<std::string> worker_args;  // more arguments for the pilots' pesc-worker
  // The pesc-worker the pilots run; empty: $PESC_WORKER_BIN, else the one
  // beside this program, else pesc-worker on the nodes' PATH.
  std::string worker;
  // "host:port" the nodes reach this process at; empty: this host's name
  // when it resolves to an address other than loopback, else its first
  // such address; port 0 picks a free one.
  std::string listen;
  // Ranks this process runs itself besides the pilots; 0: every rank runs
  // on the cluster.
  int local_slots = 0;
};

// PoolOptions by name, each value as text, for the bindings: batch_system,
// partition, time_limit and idle_timeout (a duration such as 90s, 10m or
// 1h, or seconds), max_workers, slots_per_worker, submit_args and
// worker_args (one text per argument), worker, listen, local_slots. Throws
// pesc::Error (kInvalidArgument) naming the option that is unknown or
// unreadable.
PoolOptions pool_options_from(const std::map<std::string, std::vector<std::string>>& named);

struct FarmOptions {
  // "host:port" of a pesc-coordinator; empty: PESC_COORDINATOR, and when that
  // is unset too, an embedded local farm inside this process.
  std::string coordinator;
  // With no coordinator named: the session's farm is a batch system's
  // nodes, reached through pilots (PoolOptions). state_dir then holds the
  // session's token, certificates and pilot logs and must be on a
  // filesystem the nodes see (default: a new directory under
  // ~/.cache/pesc/sessions, mode 0700, removed when the session ends).
  std::optional<PoolOptions> pool;
  // Embedded farm only: where its state lives (default: a temporary
  // directory removed when the farm goes) and how many ranks run at once
  // (default: the number of cores).
  std::filesystem::path state_dir;
  int slots = 0;
  // Who submits; default: $USER. A coordinator files the job under the name
  // its token stands for; only an admin's token may name another user.
  std::string user;

  // A coordinator's token (see README, "Security"). Empty: the file
  // token_file names, else $PESC_TOKEN, else $PESC_TOKEN_FILE, else
  // ~/.config/pesc/token. The embedded farm needs none.
  std::string token;
  std::filesystem::path token_file;
  // TLS: the CA that signed the coordinator's certificate (default
  // $PESC_TLS_CA; unset: no TLS), and this client's certificate and key for
  // a coordinator that asks for one (default $PESC_TLS_CERT, $PESC_TLS_KEY).
  std::filesystem::path tls_ca;
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
};

// What one rank may use; zero: no limit. A rank over its memory, CPU time
// or output size is killed and reported (RankResult::limit_exceeded); past
// its open files or processes, its open() or fork() fails.
struct RankLimits {
  int64_t memory_bytes = 0;           // all its processes together
  std::chrono::milliseconds cpu_time{0};  // each of its processes
  int open_files = 0;                 // descriptors per process
  int processes = 0;                  // processes and threads at once
  int64_t output_bytes = 0;           // what it leaves in output_dir
};

// "512M", "2G", "1.5GiB", "4096" (bytes): binary units, case ignored. Throws
// pesc::Error (kInvalidArgument) for anything else. For limits typed by people.
int64_t parse_size(const std::string& text);

struct MapOptions {
  // The entry point inside a directory or archive process.
  std::string entry;
  // A label shown by `pesc jobs`.
  std::string name;
  // Attempts for a rank that exits non-zero (1: no retry). A rank whose
  // worker was lost is always retried.
  int max_attempts = 1;
  // A rank running longer is killed and reported failed; zero: no limit.
  std::chrono::milliseconds timeout{0};
  // How often a running rank's checkpoint_dir is saved when it changed, so a
  // rank moved to another worker resumes from it; zero: only when an
  // attempt ends.
  std::chrono::milliseconds checkpoint_interval{0};
  // The process is a pesc runner that serves rank after rank over the runner
  // protocol (libpesc/executor/warm_runner.h): workers keep one warm per
  // slot. The bindings' function mode sets it.
  bool warm_runner = false;
  // Rooms (groups of workers, e.g. a lab) the ranks may run in; empty: the
  // public room.
  std::vector<std::string> rooms;
  // Every rank on one worker.
  bool same_machine = false;
  // Read-only inputs every rank finds in its app_dir by name: paths
  // (uploaded once, fetched once per worker) or URLs (http, https, ftp,
  // file) that the workers fetch themselves.
  std::vector<std::string> shared;
  RankLimits limits;
  // The ranks may use the network; workers that sandbox ranks (bubblewrap)
  // give them none otherwise.
  bool network = false;
  // A gang (torch.distributed, MPI-like code): every rank runs at the same
  // time, all started together once all are placed, each told rank 0's
  // address and a free port on its host (--master_addr, --master_port,
  // MASTER_ADDR, MASTER_PORT) and given the network. A rank lost or failed
  // restarts the gang as a whole. A gang larger than the slots of the
  // workers in its rooms waits, Progress::waiting saying so.
  bool parallel = false;
  // Never run a rank twice at once. By default, when the queue is empty and
  // slots are idle, a rank running long past its worker's typical rank
  // time is also started on the fastest idle worker and the first success
  // wins (the other attempt is stopped). Set it for ranks with side effects.
  bool no_duplicates = false;
  // NVIDIA GPUs each rank needs to itself (it sees them as
  // CUDA_VISIBLE_DEVICES); the ranks run only on workers that have them free.
  int gpus = 0;
  // The least compute capability those GPUs may have, e.g. 7.5; 0: any.
  double min_capability = 0;
  // Reproducible random numbers: every rank sees it as PESC_SEED and
  // derives its own stream from it and its rank, so a rank's numbers do not
  // depend on where, when, in which chunk or in which attempt it runs. The
  // bindings' function mode seeds the language's generators with it.
  std::optional<uint64_t> seed;
  // Told once when the job ends (its outcome, wall time and speedup), by
  // the coordinator: "mailto:ADDR" (the coordinator needs --smtp-url) or an
  // http:// or https:// URL, which gets a JSON POST. At most 4.
  std::vector<std::string> notify;
};

// The built-in domain a file's name suggests, as `pesc run` infers it: .py
// python, .R/.r R, .sh shell, .jar java, anything else native.
std::string domain_for_file(std::string_view file_name);

// MapOptions by the names every client gives them: `pesc run`'s long flags
// with underscores (entry, name, max_attempts, timeout, memory, rooms ...),
// each value as text: seconds for times, sizes as parse_size() reads them,
// true or false, one text per value of rooms, shared and notify. The
// bindings and the web API hand their users' options to this one table, so
// each option is read and checked in one place. An option not named keeps
// its default. Throws pesc::Error (kInvalidArgument) naming the option that
// is unknown or unreadable and what it takes.
using NamedOptions = std::map<std::string, std::vector<std::string>>;
MapOptions map_options_from(const NamedOptions& named);
// Their names, in the order of MapOptions.
std::vector<std::string> map_option_names();

enum class RankStatus { kPending, kRunning, kSucceeded, kFailed, kCancelled };
const char* to_string(RankStatus status);

// Whose fault it was that a rank failed. Only kWorker counts against the
// worker; a job whose first ranks all fail with kJob ends at once, and
// Job::next and Job::wait throw pesc::Error (kFailedPrecondition) saying what
// to change.
enum class FailureClass {
  kNone,    // it did not fail
  kJob,     // what the job holds or asks: not executable, no interpreter, arguments too long, ...
  kRank,    // the rank's own run: a non-zero exit, a signal, a timeout, a limit
  kWorker,  // the worker's: lost, disk full, no resources to start it
  kOwner,   // the machine's owner took it back
};
const char* to_string(FailureClass failure_class);  // "", "job", "rank", "worker", "owner"

struct RankResult {
  int rank = 0;
  RankStatus status = RankStatus::kPending;
  int exit_code = 0;
  int signal = 0;           // non-zero when the rank was killed by a signal
  std::string output;       // its output.txt: everything it printed
  std::string worker;       // the worker that ran the accepted attempt
  std::chrono::milliseconds duration{0};
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;
  std::chrono::milliseconds cpu_time{0};
  int64_t max_rss_kb = 0;
  int64_t attempt = 0;      // id of the accepted attempt
  int attempts = 0;         // attempts the rank took
  // The worker of each attempt not kept (failed and retried, lost with its
  // worker, a straggler's duplicate that lost), in the order they started.
  std::vector<std::string> other_attempt_workers;
  bool timed_out = false;   // killed for running past MapOptions::timeout
  std::string limit_exceeded;  // "memory", "cpu" or "output": the limit it was killed for
  bool has_files = false;   // output_dir held more than output.txt
  std::string error;        // why it never ran, when it did not
  FailureClass failure_class = FailureClass::kNone;
  // Entries of its output_dir left out of its files (links leading outside
  // it), relative to output_dir.
  std::vector<std::string> left_out;

  bool ok() const { return status == RankStatus::kSucceeded; }
};

struct Progress {
  int total = 0;
  int pending = 0;
  int running = 0;  // started on a worker's slot
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  // Why pending ranks cannot start anywhere now, e.g. "no worker is
  // connected to the coordinator"; empty when they only wait for a slot.
  std::string waiting;
  // Sent to a worker that has not started them yet (its slots are busy).
  int queued_at_workers = 0;
  int finished() const { return succeeded + failed + cancelled; }
};

// What a finished job gained from the farm and where the rest of the time
// went: the figures PESC's authors tabulated by hand. All times come from
// the results; a worker's slots are not in them, so they are inferred as the
// most ranks that worker ran at once (each rank goes to the lowest-numbered
// slot lane that was free when it started).
//
// Slot-time is slots x wall time. What the ranks did not use of it is split
// into the six `lost_*` parts below, which add up to it exactly.
//
// @code
//   pesc::JobReport report = results.report();
//   std::cout << report.to_text();          // summary and per-worker table
//   std::ofstream("timeline.svg") << report.timeline_svg();
// @endcode
struct WorkerReport {
  std::string worker;
  int first_lane = 0;  // its lanes are first_lane .. first_lane + slots - 1 in JobReport::lanes
  int slots = 0;       // inferred: the most of its ranks that ran at once
  int ranks = 0;       // ranks whose accepted attempt ran here
  int failed = 0;
  std::chrono::milliseconds busy{0};  // sum of its ranks' run times
  std::chrono::milliseconds mean_rank_time{0};
  std::chrono::milliseconds max_rank_time{0};
  int max_rank = -1;          // the rank that took max_rank_time
  int retried_ranks = 0;      // its ranks that needed more than one attempt
  int lost_attempts = 0;      // its attempts not kept: failed and retried, timed out, or lost with it
  double utilization = 0.0;   // busy / (slots x wall time)
  std::chrono::milliseconds paused{0};  // wall time it took no new ranks (owner present, CPU busy, disk full)
};

// A stretch in which a worker took no new ranks, and why ("owner present",
// "CPU busy", "disk full"), as its farm recorded it.
struct WorkerPause {
  std::string worker;
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;  // epoch: still paused
  std::string reason;
};

// A worker's pause on the timeline (over all its lanes), times relative to JobReport::started.
struct PausedStretch {
  int first_lane = 0;
  int lanes = 0;
  std::chrono::milliseconds start{0};
  std::chrono::milliseconds end{0};
  std::string reason;
};

// One rank on the timeline, times relative to JobReport::started.
struct TimelineBar {
  int rank = 0;
  int lane = 0;  // index into JobReport::lanes
  std::chrono::milliseconds start{0};
  std::chrono::milliseconds end{0};
  RankStatus status = RankStatus::kSucceeded;
};

struct JobReport {
  std::string job_id;
  int ranks = 0;
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int never_ran = 0;  // ranks with no start time (cancelled before they ran, or could not start)
  // Failed ranks by whose fault it was (RankResult::failure_class).
  struct FailuresByClass {
    int job = 0;
    int rank = 0;
    int worker = 0;
    int owner = 0;
    // "job 1, rank 0, worker 2, owner 0"
    std::string to_text() const;
  };
  FailuresByClass failed_by_class;
  int slots = 0;      // lanes in use, summed over workers
  // Submitted (the farm's clock; the first start when unknown) and finished
  // (the last end when unknown or earlier). Worker clocks that run ahead or
  // behind the coordinator's are clamped into this span.
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
  std::chrono::milliseconds wall{0};       // finished - started
  std::chrono::milliseconds rank_time{0};  // sum of every rank's run time
  double speedup = 0.0;                    // rank_time / wall
  double efficiency = 0.0;                 // speedup / slots

  // Slot-time lost (slot-milliseconds), split by where it went:
  std::chrono::milliseconds lost_before_first_start{0};  // submit, upload, first dispatch: slots x (first start - started)
  std::chrono::milliseconds lost_ramp_up{0};             // lanes starting after the first rank started
  std::chrono::milliseconds lost_between_ranks{0};       // idle gaps inside a lane: dispatch and staging
  std::chrono::milliseconds lost_tail{0};                // lanes idle while the last ranks finish (imbalance)
  std::chrono::milliseconds lost_after_last_end{0};      // collecting results: slots x (finished - last end)
  std::chrono::milliseconds lost_paused{0};  // idle lanes of a paused worker (taken out of the five above)
  std::chrono::milliseconds lost() const {
    return lost_before_first_start + lost_ramp_up + lost_between_ranks + lost_tail + lost_after_last_end +
           lost_paused;
  }
  // Wall time in which one or more of the job's workers were paused, and
  // the reasons they gave (sorted, each once).
  std::chrono::milliseconds paused{0};
  std::vector<std::string> paused_reasons;
  // Slot-time lost per rank that ran: what the farm costs a rank.
  std::chrono::microseconds overhead_per_rank{0};

  std::vector<std::string> lanes;  // "worker #slot", worker by worker
  std::vector<WorkerReport> workers;  // ordered by name
  std::vector<TimelineBar> timeline;  // ranks that ran, by lane then start
  std::vector<PausedStretch> paused_stretches;  // by first lane then start

  // Builds the report of `ranks` (any order; ranks that never started count
  // only in never_ran). `submitted` and `finished` are the farm's times for
  // the job; a default (epoch) value means unknown. `pauses`: the farm's
  // workers' pauses (those of workers that ran none of the ranks are left out).
  static JobReport from(const std::string& job_id, const std::vector<RankResult>& ranks,
                        std::chrono::system_clock::time_point submitted = {},
                        std::chrono::system_clock::time_point finished = {},
                        const std::vector<WorkerPause>& pauses = {});

  // The summary and the per-worker table, as plain text.
  std::string to_text() const;
  // A Gantt chart, one row per worker slot, as a standalone SVG document.
  std::string timeline_svg() const;
};

class Connection;  // private: the client library underneath
class Job;

// Every rank's result, indexed by rank.
class Results {
 public:
  Results() = default;
  size_t size() const { return ranks_.size(); }
  const RankResult& operator[](size_t rank) const { return ranks_.at(rank); }
  std::vector<RankResult>::const_iterator begin() const { return ranks_.begin(); }
  std::vector<RankResult>::const_iterator end() const { return ranks_.end(); }

  // Every rank's output.txt joined in rank order.
  std::string output() const;
  // Ranks that did not succeed.
  std::vector<int> failed_ranks() const;
  bool ok() const { return failed_ranks().empty(); }

  // Writes dir/rank_<r>/ (output.txt and every file the rank left in its
  // output_dir) for each rank, and dir/output.txt joined in rank order.
  void save(const std::filesystem::path& dir) const;

  // The bytes of one file a rank left in its output_dir (`relative` to it,
  // e.g. "sub/data.bin"). Throws kNotFound when the rank left no such file.
  std::string read_file(size_t rank, const std::filesystem::path& relative) const;

  const std::string& job_id() const { return job_id_; }

  // Runs ranks of this finished job again on its farm (`pesc retry`): the
  // given ones, or every rank that did not succeed when `ranks` is empty
  // (a succeeded rank named runs again too). Returns the job, following
  // only those ranks: its wait() gives every rank in rank order, the
  // retried ones' new results in place of these. Throws
  // kFailedPrecondition while the job still runs or when no rank is left to
  // retry, kOutOfRange for a rank the job does not have.
  Job retry(const std::vector<int>& ranks = {}) const;

  // The job's report (JobReport::from over these ranks and the farm's
  // submit and finish times, asked of the farm now; when it no longer knows
  // the job, the first start and last end stand in).
  JobReport report() const;
  // report().timeline_svg().
  std::string timeline_svg() const;

 private:
  friend class Job;
  std::string job_id_;
  std::vector<RankResult> ranks_;
  std::vector<std::string> files_;  // per rank: where its output files are, in the farm's terms (opaque)
  int64_t last_seq_ = 0;            // the farm's count of ranks ended, when these were collected
  std::shared_ptr<Connection> connection_;
};

// One rank's output.txt as it grows (`pesc logs JOB RANK -f`): read from
// the worker running the rank while it runs, then from its result. A new
// attempt of the rank (a retry after a failure) starts its output over; the
// pieces then go on with what the new attempt prints. Ranks that run several
// to an attempt (short function-mode ranks in chunks) show theirs when they end.
class RankLog {
 public:
  RankLog(RankLog&&) noexcept;
  RankLog& operator=(RankLog&&) noexcept;
  ~RankLog();

  // The next piece of the output, waiting up to `timeout` for one; nullopt
  // when the timeout passes first or once ended(). Not following, the
  // first call returns what the rank has printed so far and ends the log.
  std::optional<std::string> next(std::chrono::milliseconds timeout = std::chrono::hours(24 * 365));
  // No more pieces come: the rank ended and all it printed was returned.
  bool ended() const;

 private:
  friend class Job;
  friend class Farm;
  struct State;
  explicit RankLog(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A submitted job. It belongs to the farm, not to this object: destroying a
// Job neither waits for nor cancels it (cancel() does).
class Job {
 public:
  Job(Job&&) noexcept;
  Job& operator=(Job&&) noexcept;
  ~Job();

  const std::string& id() const;
  int repetitions() const;
  // Its ranks run in warm runners (MapOptions::warm_runner): the bindings'
  // function mode, whose ranks leave values to decode.
  bool warm_runner() const;

  // The next rank to finish, in completion order; nullopt once every rank
  // has been returned, or when `timeout` passes first.
  std::optional<RankResult> next(std::chrono::milliseconds timeout = std::chrono::hours(24 * 365));

  // Blocks until every rank has finished; results in rank order. A job that
  // failed as a whole (its first ranks all failed for its own fault) throws
  // kFailedPrecondition with why, from here or next(), once: done() is then
  // true and wait() returns its ranks as they ended (the rest cancelled).
  Results wait();
  // Finished ranks so far and what the farm says of the rest.
  Progress progress() const;
  bool done() const;

  // Stops every running rank and dispatches no more. Tries again for a few
  // seconds while the farm cannot be reached.
  void cancel();
  // cancel() for a wait the user interrupted (Ctrl-C, SIGTERM): never
  // throws, and returns what to tell the user, "cancelled job ID" or "could
  // not confirm the cancel of job ID: why".
  std::string cancel_for_interrupt() noexcept;

  // Runs ranks of this ended job again (see Results::retry); next() and
  // wait() then follow them, and wait() gives every rank in rank order.
  // Returns the ranks that run again.
  std::vector<int> retry(const std::vector<int>& ranks = {});

  // Follows rank `rank`'s output.txt (`follow`) or reads what it printed so
  // far. Throws kOutOfRange for a rank the job does not have.
  RankLog log(int rank, bool follow = true) const;

 private:
  friend class Farm;
  friend class Results;
  struct State;
  explicit Job(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class Farm {
 public:
  explicit Farm(std::string domain, FarmOptions options = {});
  Farm(Farm&&) noexcept;
  Farm& operator=(Farm&&) noexcept;
  ~Farm();

  // Runs `process` (a script or binary, a directory, or a tar/zip archive)
  // `repetitions` times; every rank gets `parameters` byte for byte.
  Job map(const std::filesystem::path& process, int repetitions, const std::vector<std::string>& parameters = {},
          const MapOptions& options = {});

  // Picks up a job submitted earlier, from this or another session.
  Job attach(const std::string& job_id);

  // Job::log for a job known by its id.
  RankLog log(const std::string& job_id, int rank, bool follow = true);

  // Forgets a job and the results the farm stores for it (cancelling it
  // first if it still runs).
  void remove_job(const std::string& job_id);

  // "embedded (N slots)", the coordinator's address, or for a pool's
  // session "session coordinator at HOST:PORT, pool slurm (partition P)".
  std::string describe() const;

  // The same farm (and session) running ranks of another domain.
  Farm with_domain(std::string domain) const;

  // Ends a pool's session now: cancels its pilots and stops its
  // coordinator (Jobs and Results of it can no longer reach the farm). The
  // session also ends when the last Farm, Job and Results of it are gone,
  // or when the process exits normally. Nothing for other farms.
  void close();

 private:
  Farm(std::string domain, std::string user, std::shared_ptr<Connection> connection);
  Job follow(const std::string& job_id, const Progress& progress, bool warm_runner);
  std::string domain_;
  std::string user_;
  std::shared_ptr<Connection> connection_;
};

}  // namespace pesc

#endif  // PESC_PESC_H_
