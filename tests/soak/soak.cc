// pesc soak: rounds of a 5000-rank job over real workers on loopback while
// a chaos thread SIGKILLs a random worker every few seconds (and starts it
// again a little later, like a desktop rebooted) and now and then SIGSTOPs
// one past its lease before SIGCONTing it. Every round is checked: each rank
// exactly once, in rank order, bytes intact, no rank started more often than
// the coordinator issued attempts for it. Then it prints what it saw.
// tests/soak/run.sh builds and runs it; see tests/soak/README.md.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "farm_harness.h"
#include "pesc/pesc.h"

ABSL_FLAG(double, minutes, 10, "keep starting rounds (one job each) until this much time has passed");
ABSL_FLAG(int, ranks, 5000, "ranks per round's job");
ABSL_FLAG(std::vector<std::string>, slots, std::vector<std::string>({"2", "1", "2", "1"}),
          "slots of each worker, one number per worker");
ABSL_FLAG(int, lease_ms, 2000, "the coordinator's --worker-lease-ms");
ABSL_FLAG(int, chaos_min_ms, 3000, "shortest pause between two blows");
ABSL_FLAG(int, chaos_max_ms, 6000, "longest pause between two blows");
ABSL_FLAG(double, stop_share, 0.25, "share of blows that are SIGSTOP (past the lease, then SIGCONT) instead of SIGKILL");
ABSL_FLAG(uint64_t, seed, 0, "random seed (0: from the clock); printed, so a run can be repeated");
ABSL_FLAG(std::string, keep_logs, "", "copy the daemons' logs here at the end (always done on failure, to ./soak-logs)");
ABSL_FLAG(bool, verbose, false, "print every blow and what it cost");

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count();
}

// The rank: logs its start (wall ms and the directory it runs in, which
// names its worker) to the file in parameter 0, sleeps 20-200 ms, then
// prints the first eight values of the Gaussian generator's LCG seeded with
// its rank. rank_payload() below is the same arithmetic.
constexpr const char* kRankScript =
    "printf 'start %s %s %s\\n' \"$PESC_RANK\" \"$(date +%s%3N)\" \"$(pwd -P)\" >> \"$PESC_PARAMETER_0\"\n"
    "x=$PESC_RANK; out=\"rank $PESC_RANK\"; i=0\n"
    "while [ $i -lt 8 ]; do x=$(( (1103515245 * x + 12345) % 2147483648 )); out=\"$out $x\"; i=$((i + 1)); done\n"
    "sleep \"0.$(printf '%03d' $(( 20 + PESC_RANK * 7919 % 181 )))\"\n"
    "echo \"$out\"\n";

std::string rank_payload(int rank) {
  int64_t x = rank;
  std::string out = "rank " + std::to_string(rank);
  for (int i = 0; i < 8; ++i) {
    x = (1103515245 * x + 12345) % 2147483648;
    out += " " + std::to_string(x);
  }
  return out + "\n";
}

struct Blow {
  enum Kind { kKill, kStop } kind;
  size_t worker;
  int64_t at_ms;
};

// The chaos: one thread owns the farm's daemons while the rounds run.
class Chaos {
 public:
  Chaos(pesc::testing::TestFarm& farm, size_t workers, uint64_t seed) : farm_(farm), states_(workers), random_(seed) {}

  void run(const std::atomic<bool>& stop) {
    const milliseconds lease(absl::GetFlag(FLAGS_lease_ms));
    std::uniform_int_distribution<int> pause(absl::GetFlag(FLAGS_chaos_min_ms), absl::GetFlag(FLAGS_chaos_max_ms));
    std::uniform_int_distribution<int> down_for(1000, 4000);    // a reboot
    std::uniform_int_distribution<int> stopped_beyond(500, 2000);  // past the lease
    std::bernoulli_distribution stop_not_kill(absl::GetFlag(FLAGS_stop_share));
    auto next_blow = std::chrono::steady_clock::now() + milliseconds(pause(random_));
    while (!stop) {
      std::this_thread::sleep_for(milliseconds(50));
      const auto now = std::chrono::steady_clock::now();
      for (size_t i = 0; i < states_.size(); ++i) {
        State& state = states_[i];
        if (state.condition == State::kUp || now < state.until) continue;
        if (state.condition == State::kDown) {
          farm_.restart_worker(i);
          ++restarts_;
        } else {
          farm_.worker(i).kill(SIGCONT);
        }
        state.condition = State::kUp;
      }
      if (now < next_blow) continue;
      next_blow = now + milliseconds(pause(random_));
      std::vector<size_t> up;
      for (size_t i = 0; i < states_.size(); ++i) {
        if (states_[i].condition == State::kUp) up.push_back(i);
      }
      if (up.size() < 2) continue;  // someone must be left to run the ranks
      const size_t victim = up[std::uniform_int_distribution<size_t>(0, up.size() - 1)(random_)];
      State& state = states_[victim];
      Blow blow{stop_not_kill(random_) ? Blow::kStop : Blow::kKill, victim, now_ms()};
      if (blow.kind == Blow::kKill) {
        farm_.worker(victim).kill(SIGKILL);
        farm_.worker(victim).wait();
        state.condition = State::kDown;
        state.until = now + milliseconds(down_for(random_));
      } else {
        farm_.worker(victim).kill(SIGSTOP);
        state.condition = State::kStopped;
        state.until = now + lease + milliseconds(stopped_beyond(random_));
      }
      std::lock_guard<std::mutex> lock(mutex_);
      blows_.push_back(blow);
    }
    // A stopped worker would never act on the SIGTERM the farm ends it with.
    for (size_t i = 0; i < states_.size(); ++i) {
      if (states_[i].condition == State::kStopped) farm_.worker(i).kill(SIGCONT);
    }
  }

  std::vector<Blow> blows() {
    std::lock_guard<std::mutex> lock(mutex_);
    return blows_;
  }
  int restarts() const { return restarts_; }

 private:
  struct State {
    enum { kUp, kDown, kStopped } condition = kUp;
    std::chrono::steady_clock::time_point until;
  };
  pesc::testing::TestFarm& farm_;
  std::vector<State> states_;
  std::mt19937_64 random_;
  std::mutex mutex_;
  std::vector<Blow> blows_;  // guarded by mutex_
  int restarts_ = 0;
};

struct Start {
  int64_t at_ms;
  int worker;  // -1 when the directory names none
};

// Parses the ranks' start log: rank -> its starts in time order.
std::map<int, std::vector<Start>> read_starts(const fs::path& log, const fs::path& farm_dir) {
  std::map<int, std::vector<Start>> starts;
  std::ifstream in(log);
  std::string word, dir;
  int rank;
  int64_t at;
  const std::string prefix = fs::weakly_canonical(farm_dir).string() + "/worker";
  while (in >> word >> rank >> at >> dir) {
    int worker = -1;
    if (dir.rfind(prefix, 0) == 0) worker = std::atoi(dir.c_str() + prefix.size());
    starts[rank].push_back({at, worker});
  }
  for (auto& [r, list] : starts) {
    std::sort(list.begin(), list.end(), [](const Start& a, const Start& b) { return a.at_ms < b.at_ms; });
  }
  return starts;
}

// What one blow cost: the ranks that were running on the worker when it was
// hit and started again afterwards, and how long after the blow the first
// and the last of them started again.
struct BlowCost {
  Blow blow;
  int redone = 0;
  int64_t first_rerun_ms = -1;
  int64_t last_rerun_ms = -1;
};

struct Round {
  int number = 0;
  double seconds = 0;
  int attempts = 0;
  int ranks_retried = 0;          // the farm counted more than one attempt
  int ranks_started_again = 0;    // the rank itself started more than once
  std::vector<std::string> failures;
};

std::string percentiles(std::vector<int64_t> values) {
  if (values.empty()) return "n/a";
  std::sort(values.begin(), values.end());
  auto at = [&](double q) { return values[static_cast<size_t>(q * static_cast<double>(values.size() - 1))]; };
  return absl::StrFormat("min %d, median %d, p90 %d, max %d ms (%d blows)", values.front(), at(0.5), at(0.9),
                         values.back(), values.size());
}

Round run_round(int number, pesc::Farm& client, const fs::path& script, const fs::path& log, int ranks,
                const fs::path& farm_dir, std::map<int, std::vector<Start>>& starts) {
  Round round;
  round.number = number;
  const auto began = std::chrono::steady_clock::now();
  pesc::Job job = client.map(script, ranks, {log.string()}, {.name = "soak round " + std::to_string(number)});
  // Completion order, counted per rank: each must come exactly once.
  std::vector<int> delivered(static_cast<size_t>(ranks), 0);
  int arrived = 0;
  while (arrived < ranks) {
    std::optional<pesc::RankResult> result = job.next(std::chrono::minutes(3));
    if (!result) break;
    ++arrived;
    if (result->rank >= 0 && result->rank < ranks) delivered[static_cast<size_t>(result->rank)] += 1;
  }
  if (arrived < ranks) {
    round.failures.push_back(absl::StrFormat("stalled: %d of %d ranks after 3 minutes without news", arrived, ranks));
    job.cancel();
    return round;
  }
  pesc::Results results = job.wait();
  round.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  std::string expected;
  std::set<int64_t> accepted;
  for (int rank = 0; rank < ranks; ++rank) expected += rank_payload(rank);
  if (results.output() != expected) round.failures.push_back("the joined output is not every rank's payload in order");
  starts = read_starts(log, farm_dir);
  for (int rank = 0; rank < ranks; ++rank) {
    const pesc::RankResult& result = results[static_cast<size_t>(rank)];
    const size_t index = static_cast<size_t>(rank);
    auto fail = [&](const std::string& what) {
      if (round.failures.size() < 20) round.failures.push_back("rank " + std::to_string(rank) + ": " + what);
    };
    if (delivered[index] != 1) fail(absl::StrFormat("delivered %d times", delivered[index]));
    if (result.rank != rank) fail("came back as rank " + std::to_string(result.rank));
    if (!result.ok()) fail("did not succeed: " + result.error + result.output);
    if (result.output != rank_payload(rank)) fail("bytes differ: \"" + result.output + "\"");
    if (!accepted.insert(result.attempt).second) fail("its accepted attempt is another rank's too");
    const int started = static_cast<int>(starts[rank].size());
    if (started == 0) fail("never logged a start");
    const bool ran_where_accepted = std::any_of(starts[rank].begin(), starts[rank].end(), [&](const Start& start) {
      return "worker" + std::to_string(start.worker) == result.worker;
    });
    if (!ran_where_accepted) fail("accepted from " + result.worker + ", where it never started");
    if (started > result.attempts) {
      fail(absl::StrFormat("started %d times but the farm issued %d attempts", started, result.attempts));
    }
    round.attempts += result.attempts;
    round.ranks_retried += result.attempts > 1;
    round.ranks_started_again += started > 1;
  }
  // What the coordinator keeps is what was delivered.
  pesc::Results stored = client.attach(results.job_id()).wait();
  for (int rank = 0; rank < ranks; ++rank) {
    if (stored[static_cast<size_t>(rank)].attempt != results[static_cast<size_t>(rank)].attempt) {
      round.failures.push_back("rank " + std::to_string(rank) + ": the coordinator now holds another attempt");
      break;
    }
  }
  if (round.failures.empty()) client.remove_job(results.job_id());
  return round;
}

void cost_of(std::vector<BlowCost>& costs, const std::map<int, std::vector<Start>>& starts) {
  for (BlowCost& cost : costs) {
    for (const auto& [rank, list] : starts) {
      // The rank's last start before the blow, and its next one after.
      auto after = std::upper_bound(list.begin(), list.end(), cost.blow.at_ms,
                                    [](int64_t at, const Start& start) { return at < start.at_ms; });
      if (after == list.begin() || after == list.end()) continue;
      if (std::prev(after)->worker != static_cast<int>(cost.blow.worker)) continue;
      const int64_t delay = after->at_ms - cost.blow.at_ms;
      cost.redone += 1;
      cost.first_rerun_ms = cost.first_rerun_ms < 0 ? delay : std::min(cost.first_rerun_ms, delay);
      cost.last_rerun_ms = std::max(cost.last_rerun_ms, delay);
    }
  }
}

void copy_logs(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::create_directories(to, error);
  for (const auto& entry : fs::directory_iterator(from, error)) {
    if (entry.path().extension() == ".log") fs::copy_file(entry.path(), to / entry.path().filename(),
                                                          fs::copy_options::overwrite_existing, error);
  }
  std::cout << "logs copied to " << fs::absolute(to).string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("pesc-soak [--minutes 10] [--ranks 5000] [--slots 2,1,2,1] [--seed N]");
  absl::ParseCommandLine(argc, argv);
  const int ranks = absl::GetFlag(FLAGS_ranks);
  std::vector<int> slots;
  for (const std::string& word : absl::GetFlag(FLAGS_slots)) slots.push_back(std::max(1, std::atoi(word.c_str())));
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = static_cast<uint64_t>(now_ms());
  const auto budget = std::chrono::duration<double>(absl::GetFlag(FLAGS_minutes) * 60);
  const auto began = std::chrono::steady_clock::now();

  std::string slot_list;
  int total_slots = 0;
  for (int s : slots) {
    slot_list += (slot_list.empty() ? "" : ",") + std::to_string(s);
    total_slots += s;
  }
  std::cout << absl::StrFormat(
      "pesc soak: %d-rank jobs for at least %.1f min over %d workers (slots %s), lease %d ms, a blow every %d-%d "
      "ms (%.0f%% SIGSTOP), seed %d\n",
      ranks, absl::GetFlag(FLAGS_minutes), slots.size(), slot_list, absl::GetFlag(FLAGS_lease_ms),
      absl::GetFlag(FLAGS_chaos_min_ms), absl::GetFlag(FLAGS_chaos_max_ms), absl::GetFlag(FLAGS_stop_share) * 100,
      seed)
            << std::flush;

  pesc::testing::ScratchDir scratch;
  pesc::testing::TestFarm farm(0, 1, {"--worker-lease-ms", std::to_string(absl::GetFlag(FLAGS_lease_ms))});
  for (int s : slots) farm.add_worker(s);
  const fs::path script = pesc::testing::write_script(scratch.path(), "soak_rank.sh", kRankScript);
  pesc::Farm client("shell", {.coordinator = farm.address()});

  Chaos chaos(farm, slots.size(), seed);
  std::atomic<bool> stop_chaos{false};
  std::thread chaos_thread([&] { chaos.run(stop_chaos); });

  std::vector<Round> rounds;
  std::vector<BlowCost> costs;
  size_t blows_costed = 0;
  bool failed = false;
  try {
    do {
      const fs::path log = scratch.path() / ("starts-" + std::to_string(rounds.size() + 1) + ".log");
      std::map<int, std::vector<Start>> starts;
      Round round = run_round(static_cast<int>(rounds.size()) + 1, client, script, log, ranks, farm.dir(), starts);
      // The blows during this round, costed against its ranks' starts.
      std::vector<Blow> blows = chaos.blows();
      std::vector<BlowCost> round_costs;
      for (; blows_costed < blows.size(); ++blows_costed) round_costs.push_back({blows[blows_costed]});
      cost_of(round_costs, starts);
      costs.insert(costs.end(), round_costs.begin(), round_costs.end());
      std::cout << absl::StrFormat(
                       "round %d: %d ranks in %.1f s, %d blows, %d attempts, %d ranks retried, %d started again: "
                       "%s\n",
                       round.number, ranks, round.seconds, round_costs.size(), round.attempts, round.ranks_retried,
                       round.ranks_started_again, round.failures.empty() ? "OK" : "FAILED")
                << std::flush;
      for (const std::string& failure : round.failures) std::cout << "  " << failure << "\n";
      failed |= !round.failures.empty();
      rounds.push_back(std::move(round));
    } while (!failed && std::chrono::steady_clock::now() - began < budget);
  } catch (const pesc::Error& error) {
    std::cout << "error: " << error.what() << "\n";
    failed = true;
  }
  stop_chaos = true;
  chaos_thread.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  int kills = 0, stops = 0, redone = 0, attempts = 0, retried = 0, started_again = 0;
  std::vector<int64_t> first_kill, last_kill, first_stop, last_stop;
  for (const BlowCost& cost : costs) {
    const bool kill = cost.blow.kind == Blow::kKill;
    (kill ? kills : stops) += 1;
    redone += cost.redone;
    if (cost.redone > 0) {
      (kill ? first_kill : first_stop).push_back(cost.first_rerun_ms);
      (kill ? last_kill : last_stop).push_back(cost.last_rerun_ms);
    }
    if (absl::GetFlag(FLAGS_verbose)) {
      std::cout << absl::StrFormat("  %s worker%d at %d: %d ranks redone, first after %d ms, last after %d ms\n",
                                   kill ? "SIGKILL" : "SIGSTOP", cost.blow.worker, cost.blow.at_ms, cost.redone,
                                   cost.first_rerun_ms, cost.last_rerun_ms);
    }
  }
  for (const Round& round : rounds) {
    attempts += round.attempts;
    retried += round.ranks_retried;
    started_again += round.ranks_started_again;
  }
  const int total_ranks = ranks * static_cast<int>(rounds.size());
  std::cout << "---- report\n"
            << absl::StrFormat("ranks:         %d in %d rounds of %d, on %d slots\n", total_ranks, rounds.size(),
                               ranks, total_slots)
            << absl::StrFormat("kills:         %d SIGKILL (each worker started again 1-4 s later; %d restarts)\n",
                               kills, chaos.restarts())
            << absl::StrFormat("stops:         %d SIGSTOP past the lease, then SIGCONT\n", stops)
            << absl::StrFormat("attempts:      %d for %d ranks (%d beyond one each); %d ranks retried by the farm\n",
                               attempts, total_ranks, attempts - total_ranks, retried)
            << absl::StrFormat("redone:        %d ranks started more than once; %d starts again of a rank last "
                               "started on the worker just hit (%.1f per blow)\n",
                               started_again, redone,
                               costs.empty() ? 0.0 : static_cast<double>(redone) / static_cast<double>(costs.size()))
            << "death to rerun (from the ranks' own start times; includes the lease):\n"
            << "  SIGKILL, first of its ranks running again: " << percentiles(first_kill) << "\n"
            << "  SIGKILL, last of its ranks running again:  " << percentiles(last_kill) << "\n"
            << "  SIGSTOP, first of its ranks running again: " << percentiles(first_stop) << "\n"
            << "  SIGSTOP, last of its ranks running again:  " << percentiles(last_stop) << "\n"
            << absl::StrFormat("wall time:     %.1f s (%.1f min)\n", wall, wall / 60)
            << "verdict:       "
            << (failed ? "FAIL" : "PASS: every rank of every round exactly once, in rank order, bytes intact") << "\n"
            << std::flush;
  if (failed || !absl::GetFlag(FLAGS_keep_logs).empty()) {
    copy_logs(farm.dir(), absl::GetFlag(FLAGS_keep_logs).empty() ? fs::path("soak-logs")
                                                                 : fs::path(absl::GetFlag(FLAGS_keep_logs)));
  }
  return failed ? 1 : 0;
}
