// spine_benchmark: what the farm itself costs, measured with no-op ranks.
//
//   BM_BareSpawn          posix_spawn + waitpid of the rank binary, 2 in
//                         flight: the floor nothing can beat on this machine.
//   BM_FarmThroughput     a 2000-rank job on 2 slots, next to the bare rate
//                         measured just before it, and the ratio farm/bare.
//   BM_OneRankLatency     map() of a one-rank job to wait() returning.
//   BM_Submit100k         map() of a 100 000-rank job on a worker-less
//                         coordinator, and that coordinator's memory.
//   BM_StoreRankCycle     the coordinator's durable state alone: start and
//                         finish of one rank, in batches as a busy worker
//                         reports them, on a real SQLite file; /0 with one
//                         attempt per rank, /1 with the batch as one chunk.
//
// "loopback" runs against a real pesc-coordinator and one pesc-worker
// started here with posix_spawn; "embedded" is Farm("native") in-process.
// Every daemon and directory started here is gone when the binary exits.
// benchmarks/README.md says what each figure means and what it should be.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "pesc/pesc.h"
#include "ledger/sqlite_job_store.h"

extern char** environ;

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSlots = 2;
constexpr int kThroughputRanks = 2000;
constexpr int kSubmitRanks = 100'000;
constexpr auto kDaemonStartTimeout = std::chrono::seconds(15);
constexpr auto kDaemonStopTimeout = std::chrono::seconds(10);
constexpr auto kJobTimeout = std::chrono::minutes(5);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = (fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / (prefix + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern + " failed");
    path_ = pattern;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Starts argv[0] with posix_spawn; stdout and stderr go to `log` (or
// nowhere, when it is empty), stdin is /dev/null.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const std::string out = log.empty() ? std::string("/dev/null") : log.string();
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int error = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(error));
  return pid;
}

std::string tail_of(const fs::path& file, size_t bytes = 2000) {
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// A daemon this process started: SIGTERM, then SIGKILL, when it goes.
class Daemon {
 public:
  Daemon(std::string name, const std::vector<std::string>& argv, fs::path log)
      : name_(std::move(name)), log_(std::move(log)), pid_(spawn(argv, log_)) {}
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { stop(); }

  pid_t pid() const { return pid_; }
  const fs::path& log() const { return log_; }

  // False once it has exited (it is reaped then).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void stop() {
    if (!alive()) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kDaemonStopTimeout;
    while (Clock::now() < deadline) {
      if (!alive()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::cerr << "spine_benchmark: " << name_ << " ignored SIGTERM for "
              << std::chrono::duration_cast<std::chrono::seconds>(kDaemonStopTimeout).count() << " s; killing it\n";
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::runtime_error failure(const std::string& what) const {
    return std::runtime_error(name_ + " " + what + "; its log ends:\n" + tail_of(log_));
  }

 private:
  std::string name_;
  fs::path log_;
  pid_t pid_;
};

// A pesc-coordinator on 127.0.0.1, port chosen by the kernel.
class Coordinator {
 public:
  Coordinator()
      : dir_("pesc-bench-coordinator-"),
        daemon_("pesc-coordinator",
                {PESC_COORDINATOR_PATH, "--listen", "127.0.0.1:0", "--state-dir", (dir_.path() / "state").string()},
                dir_.path() / "coordinator.log") {
    const fs::path address_file = dir_.path() / "state" / "coordinator.address";
    const auto deadline = Clock::now() + kDaemonStartTimeout;
    while (address_.empty()) {
      std::ifstream in(address_file);
      if (in >> address_) break;
      if (!daemon_.alive()) throw daemon_.failure("exited before listening");
      if (Clock::now() > deadline) throw daemon_.failure("wrote no coordinator.address");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // The admin token, written before the address: the worker daemons and
    // the Farm of this process present it through PESC_TOKEN.
    std::string admin_token;
    std::ifstream(dir_.path() / "state" / "admin.token") >> admin_token;
    ::setenv("PESC_TOKEN", admin_token.c_str(), 1);
  }
  const std::string& address() const { return address_; }
  Daemon& daemon() { return daemon_; }

 private:
  ScratchDir dir_;  // declared first: removed after the daemon stops
  Daemon daemon_;
  std::string address_;
};

// A pesc-worker with its own work directory.
class Worker {
 public:
  Worker(const std::string& coordinator, int slots)
      : dir_("pesc-bench-worker-"),
        daemon_("pesc-worker",
                {PESC_WORKER_PATH, "--coordinator", coordinator, "--slots", std::to_string(slots), "--work-dir",
                 // pesc's own cost, without a root worker's user switch and sandbox
                 (dir_.path() / "work").string(), "--no-sandbox", "--run-as=",
                 // the machine may be busy with more than this benchmark, which would pause the worker
                 "--owners-first=false"},
                dir_.path() / "worker.log") {}
  Daemon& daemon() { return daemon_; }

 private:
  ScratchDir dir_;
  Daemon daemon_;
};

struct Memory {
  double rss_mb = 0;  // VmRSS: resident now
  double hwm_mb = 0;  // VmHWM: the most it was ever resident
};

Memory memory_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  Memory memory;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    double kb = 0;
    fields >> key >> kb;
    if (key == "VmRSS:") memory.rss_mb = kb / 1024.0;
    if (key == "VmHWM:") memory.hwm_mb = kb / 1024.0;
  }
  return memory;
}

// Spawns `count` runs of `program`, `in_flight` at a time, and returns runs
// per second. Children are reaped oldest first; a no-op's run time barely
// varies, so that costs next to nothing against reaping whichever ends first
// (which would need waitpid(-1) and could reap the daemons).
double bare_spawn_rate(const fs::path& program, int count, int in_flight) {
  const std::string path = program.string();
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  std::deque<pid_t> running;
  auto reap_oldest = [&running] {
    int status = 0;
    if (::waitpid(running.front(), &status, 0) != running.front() || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      throw std::runtime_error("a bare run failed");
    }
    running.pop_front();
  };
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    if (static_cast<int>(running.size()) == in_flight) reap_oldest();
    pid_t pid = 0;
    if (int error = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ); error != 0) {
      throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(error));
    }
    running.push_back(pid);
  }
  while (!running.empty()) reap_oldest();
  return count / seconds_since(start);
}

// Runs a job to its end, or throws once `timeout` passes (a lost worker must
// fail the benchmark, not hang it).
pesc::Results run_job(pesc::Job& job, std::chrono::milliseconds timeout = kJobTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (!job.done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      job.cancel();
      throw std::runtime_error("job " + job.id() + " did not finish in time");
    }
    job.next(left);
  }
  pesc::Results results = job.wait();
  if (!results.ok()) {
    const pesc::RankResult& first = results[static_cast<size_t>(results.failed_ranks().front())];
    throw std::runtime_error("job " + job.id() + ": " + std::to_string(results.failed_ranks().size()) +
                             " ranks failed; rank " + std::to_string(first.rank) + " exit " +
                             std::to_string(first.exit_code) + " " + first.error + " " + first.output);
  }
  return results;
}

// The nearest-rank quantile of sorted samples.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<size_t>(index, 1, sorted.size()) - 1];
}

// What the benchmarks share: the rank binary, the loopback daemons and both
// farms, started on first use and stopped by shut_down().
class Spine {
 public:
  static Spine& get() {
    if (!instance_) instance_.reset(new Spine());
    return *instance_;
  }
  static void shut_down() { instance_.reset(); }

  const fs::path& rank_binary() const { return rank_binary_; }

  pesc::Farm& loopback() {
    if (!loopback_farm_) {
      coordinator_ = std::make_unique<Coordinator>();
      worker_ = std::make_unique<Worker>(coordinator_->address(), kSlots);
      loopback_farm_ = std::make_unique<pesc::Farm>("native", pesc::FarmOptions{.coordinator = coordinator_->address()});
      warm_up(*loopback_farm_, &worker_->daemon());
    }
    return *loopback_farm_;
  }

  pesc::Farm& embedded() {
    if (!embedded_farm_) {
      embedded_farm_ = std::make_unique<pesc::Farm>("native", pesc::FarmOptions{.slots = kSlots});
      warm_up(*embedded_farm_, nullptr);
    }
    return *embedded_farm_;
  }

  ~Spine() {
    // Clients first, so no call is in flight when the daemons go.
    loopback_farm_.reset();
    embedded_farm_.reset();
    worker_.reset();
    coordinator_.reset();
  }

 private:
  Spine() : dir_("pesc-bench-") {
    rank_binary_ = dir_.path() / "true";
    fs::copy_file("/bin/true", rank_binary_);
    fs::permissions(rank_binary_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
  }

  // The first job waits for the worker to register and fills its process
  // cache; neither belongs in a measurement.
  void warm_up(pesc::Farm& farm, Daemon* worker) {
    try {
      pesc::Job job = farm.map(rank_binary_, kSlots * 2);
      run_job(job, std::chrono::seconds(30));
    } catch (const std::exception&) {
      if (worker != nullptr && !worker->alive()) throw worker->failure("exited");
      throw;
    }
  }

  static std::unique_ptr<Spine> instance_;
  ScratchDir dir_;
  fs::path rank_binary_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<pesc::Farm> loopback_farm_;
  std::unique_ptr<pesc::Farm> embedded_farm_;
};
std::unique_ptr<Spine> Spine::instance_;

enum class Target { kLoopback, kEmbedded };

pesc::Farm& farm_for(Target target) {
  return target == Target::kLoopback ? Spine::get().loopback() : Spine::get().embedded();
}

// --- Benchmarks

void BM_BareSpawn(benchmark::State& state) {
  const fs::path& program = Spine::get().rank_binary();
  for (auto _ : state) {
    try {
      const double rate = bare_spawn_rate(program, kThroughputRanks, kSlots);
      state.SetIterationTime(kThroughputRanks / rate);
    } catch (const std::exception& error) {
      state.SkipWithError(error.what());
      break;
    }
  }
  state.counters["ranks_per_s"] = benchmark::Counter(kThroughputRanks, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BareSpawn)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// The bare rate is measured right before each farm run: the machine is
// shared, so only side-by-side figures compare.
void BM_FarmThroughput(benchmark::State& state, Target target) {
  double farm_seconds = 0;
  double bare_rate_sum = 0;
  try {
    pesc::Farm& farm = farm_for(target);
    for (auto _ : state) {
      bare_rate_sum += bare_spawn_rate(Spine::get().rank_binary(), kThroughputRanks, kSlots);
      const auto start = Clock::now();
      pesc::Job job = farm.map(Spine::get().rank_binary(), kThroughputRanks);
      run_job(job);
      const double seconds = seconds_since(start);
      farm_seconds += seconds;
      state.SetIterationTime(seconds);
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  const double iterations = static_cast<double>(state.iterations());
  const double farm_rate = kThroughputRanks * iterations / farm_seconds;
  const double bare_rate = bare_rate_sum / iterations;
  state.counters["ranks_per_s"] = benchmark::Counter(kThroughputRanks, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bare_ranks_per_s"] = bare_rate;
  state.counters["farm_over_bare"] = farm_rate / bare_rate;
}
BENCHMARK_CAPTURE(BM_FarmThroughput, loopback, Target::kLoopback)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_FarmThroughput, embedded, Target::kEmbedded)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// The reported time is the mean; the counters are the distribution of the
// same samples.
void BM_OneRankLatency(benchmark::State& state, Target target) {
  std::vector<double> samples_ms;
  try {
    pesc::Farm& farm = farm_for(target);
    for (int i = 0; i < 5; ++i) {  // connections and threads settle
      pesc::Job job = farm.map(Spine::get().rank_binary(), 1);
      run_job(job);
    }
    for (auto _ : state) {
      const auto start = Clock::now();
      pesc::Job job = farm.map(Spine::get().rank_binary(), 1);
      run_job(job);
      const double seconds = seconds_since(start);
      samples_ms.push_back(seconds * 1e3);
      state.SetIterationTime(seconds);
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  std::sort(samples_ms.begin(), samples_ms.end());
  state.counters["p50_ms"] = quantile(samples_ms, 0.50);
  state.counters["p90_ms"] = quantile(samples_ms, 0.90);
  state.counters["p99_ms"] = quantile(samples_ms, 0.99);
  state.counters["max_ms"] = samples_ms.empty() ? 0 : samples_ms.back();
}
BENCHMARK_CAPTURE(BM_OneRankLatency, embedded, Target::kEmbedded)
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_OneRankLatency, loopback, Target::kLoopback)
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// A fresh coordinator with no worker, so the ranks stay queued and its
// high-water mark is this job's alone. The time is map() alone; the job is
// cancelled afterwards (timed too, as cancel_s).
void BM_Submit100k(benchmark::State& state) {
  double cancel_seconds = 0;
  Memory idle;
  Memory queued;
  try {
    const fs::path& program = Spine::get().rank_binary();
    Coordinator coordinator;
    pesc::Farm farm("native", {.coordinator = coordinator.address()});
    // Blob upload of the process is not what this measures.
    farm.map(program, 1).cancel();
    idle = memory_of(coordinator.daemon().pid());
    for (auto _ : state) {
      const auto start = Clock::now();
      pesc::Job job = farm.map(program, kSubmitRanks);
      state.SetIterationTime(seconds_since(start));
      if (job.progress().total != kSubmitRanks) {
        throw std::runtime_error("the job holds " + std::to_string(job.progress().total) + " ranks, not " +
                                 std::to_string(kSubmitRanks));
      }
      queued = memory_of(coordinator.daemon().pid());
      const auto cancel_start = Clock::now();
      job.cancel();
      cancel_seconds += seconds_since(cancel_start);
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  state.counters["ranks_per_s"] = benchmark::Counter(kSubmitRanks, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["cancel_s"] = cancel_seconds / static_cast<double>(state.iterations());
  state.counters["idle_rss_mb"] = idle.rss_mb;
  state.counters["rss_mb"] = queued.rss_mb;
  state.counters["hwm_mb"] = queued.hwm_mb;
}
BENCHMARK(BM_Submit100k)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// Ranks start and finish 20 at a time, as one AttemptsFinished batch and
// the assignments it frees room for; each result carries a function-mode
// rank's 2 KiB tar of result.pkl.
void BM_StoreRankCycle(benchmark::State& state) {
  constexpr int kRanks = 20'000;
  constexpr int kPerBatch = 20;
  const fs::path dir = fs::temp_directory_path() / ("pesc-store-bench-" + std::to_string(::getpid()));
  double seconds = 0;
  fs::create_directories(dir);
  {
    auto store = pesc::SqliteJobStore::open(dir / "pesc.sqlite");
    if (!store.ok()) {
      state.SkipWithError(std::string(store.status().message()).c_str());
      return;
    }
    const pesc::JobSpec spec{.repetitions = kRanks, .user = "bench"};
    pesc::RankRecord result;
    result.result.status = pesc::RankStatus::kSucceeded;
    result.files.inline_bytes = std::string(2048, 'x');
    int job_number = 0;
    for (auto _ : state) {
      const std::string job_id = "job" + std::to_string(job_number++);
      (void)(*store)->create_job(job_id, spec, 1);
      const auto start = Clock::now();
      for (int first = 0; first < kRanks; first += kPerBatch) {
        pesc::JobStore::Batch batch(**store);
        std::vector<pesc::JobStore::Placed> placed;
        for (int rank = first; rank < first + kPerBatch; ++rank) placed.push_back({.rank = rank, .worker_id = "w"});
        if (state.range(0) == 1) {
          auto chunk = (*store)->start_chunk(job_id, first, kPerBatch, "w", 2);
          std::vector<pesc::RankRecord> results(kPerBatch, result);
          for (int i = 0; i < kPerBatch; ++i) results[i].result.rank = first + i;
          (void)(*store)->finish_chunk(chunk->id, std::move(results), 3);
        } else {
          auto started = (*store)->start_attempts(job_id, placed, 2);
          for (const auto& attempt : *started) (void)(*store)->finish_attempt(attempt.id, result, 3);
        }
        if (!batch.commit().ok()) state.SkipWithError("the store failed to commit");
      }
      state.SetIterationTime(seconds_since(start));
      seconds += seconds_since(start);
    }
  }
  fs::remove_all(dir);
  state.counters["us_per_rank"] = seconds * 1e6 / kRanks / static_cast<double>(state.iterations());
}
BENCHMARK(BM_StoreRankCycle)->Arg(0)->Arg(1)->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // The embedded farm is only embedded when nothing names a coordinator.
  ::unsetenv("PESC_COORDINATOR");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  Spine::shut_down();
  benchmark::Shutdown();
  return 0;
}
