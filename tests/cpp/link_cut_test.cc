// A worker whose network link is cut, silently, and later restored: a real
// coordinator in this network namespace, a real worker in a namespace of
// its own behind a veth pair, and a second worker on this side where the
// first one's ranks can go. Needs root and `ip netns`; skipped otherwise.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "attempt_runs.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::read_all;
using testing::run_command;
using testing::write_script;

std::string find_tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  }
  return "";
}

// A network namespace joined to this one by a veth pair, for one test
// process: its names and its /30 come from the pid, so tests running side by
// side do not collide. The namespace and both ends of the pair go when this
// does, cut or not, whatever the test did before.
class NamespacedLink {
 public:
  // Null, with the reason in `why_not`, when this host cannot make one.
  static std::unique_ptr<NamespacedLink> create(std::string& why_not) {
    if (::geteuid() != 0) {
      why_not = "needs root to make a network namespace";
      return nullptr;
    }
    auto link = std::unique_ptr<NamespacedLink>(new NamespacedLink());
    if (link->ip_.empty() || link->tc_.empty()) {
      why_not = "needs ip (iproute2) and tc";
      return nullptr;
    }
    link->remove();  // left over by an earlier process with this pid that was killed
    const std::vector<std::vector<std::string>> setup = {
        {link->ip_, "netns", "add", link->namespace_},
        {link->ip_, "link", "add", link->host_side_, "type", "veth", "peer", "name", link->worker_side_},
        {link->ip_, "link", "set", link->worker_side_, "netns", link->namespace_},
        {link->ip_, "addr", "add", link->host_address_ + "/30", "dev", link->host_side_},
        {link->ip_, "link", "set", link->host_side_, "up"},
        {link->ip_, "-n", link->namespace_, "addr", "add", link->worker_address_ + "/30", "dev", link->worker_side_},
        {link->ip_, "-n", link->namespace_, "link", "set", link->worker_side_, "up"},
        {link->ip_, "-n", link->namespace_, "link", "set", "lo", "up"},
    };
    for (const auto& command : setup) {
      if (auto done = run_command(command); done.exit_code != 0) {
        why_not = "cannot set up a network namespace (" + command[1] + " " + command[2] + "): " + done.err;
        return nullptr;
      }
    }
    // The cut must work here, or the test would prove nothing.
    if (std::string failed = link->set_cut(true); !failed.empty()) {
      why_not = "cannot drop packets on a veth with tc (pfifo limit 0): " + failed;
      return nullptr;
    }
    if (std::string failed = link->set_cut(false); !failed.empty()) {
      why_not = "cannot restore a cut veth with tc: " + failed;
      return nullptr;
    }
    return link;
  }

  ~NamespacedLink() { remove(); }

  const std::string& host_address() const { return host_address_; }
  // Runs a command inside the namespace (exec'd: the pid stays the command's).
  std::vector<std::string> launcher() const { return {ip_, "netns", "exec", namespace_}; }

  // Every packet, either way, vanishes: a queue of length zero on both ends
  // of the pair drops all it is given. Nothing answers (no RST, no ICMP) and
  // both links stay up, as when a cable is pulled somewhere between two
  // switches. Empty on success, else what failed.
  std::string cut() { return set_cut(true); }
  std::string restore() { return set_cut(false); }

 private:
  NamespacedLink()
      : ip_(find_tool("ip")),
        tc_(find_tool("tc")),
        namespace_("pesc-linkcut-" + std::to_string(::getpid())),
        host_side_("pch" + std::to_string(::getpid())),
        worker_side_("pcw" + std::to_string(::getpid())) {
    // 16384 /30 blocks of 10.211.0.0/16, one picked by the pid.
    const int block = ::getpid() % 16384;
    const std::string prefix = "10.211." + std::to_string(block / 64) + ".";
    host_address_ = prefix + std::to_string(block % 64 * 4 + 1);
    worker_address_ = prefix + std::to_string(block % 64 * 4 + 2);
  }

  std::string set_cut(bool cut) {
    auto qdisc = [&](const std::string& device) {
      std::vector<std::string> command = {tc_, "qdisc", cut ? "add" : "del", "dev", device, "root"};
      if (cut) command.insert(command.end(), {"pfifo", "limit", "0"});
      return command;
    };
    std::vector<std::string> inside = launcher();
    for (std::string& word : qdisc(worker_side_)) inside.push_back(std::move(word));
    std::string failed;
    for (const auto& command : {qdisc(host_side_), inside}) {
      if (auto done = run_command(command); done.exit_code != 0) failed += done.err;
    }
    return failed;
  }

  // Deleting the namespace takes its end of the pair, and with it ours;
  // ours is deleted too in case the namespace outlives this (a process still
  // in it keeps it alive).
  void remove() {
    if (ip_.empty()) return;
    (void)run_command({ip_, "link", "del", host_side_});
    (void)run_command({ip_, "netns", "del", namespace_});
  }

  std::string ip_;
  std::string tc_;
  std::string namespace_;
  std::string host_side_;
  std::string worker_side_;
  std::string host_address_;
  std::string worker_address_;
};

// What rank `rank` prints: its number and a hash of it, so a byte lost or
// swapped anywhere shows.
std::string rank_payload(int rank) {
  const uint64_t hash = (static_cast<uint64_t>(rank) * 2654435761u) % 4294967296u;
  return "rank " + std::to_string(rank) + " " + std::to_string(hash) + "\n";
}

// A rank that finds itself on the cut worker's side (its directory under $2)
// once the file `linger` exists leaves its pid under lingering/ and sleeps a
// minute, so it is still running, unreachable, when the link comes back.
constexpr const char* kRankScript =
    "d=\"$PESC_PARAMETER_0\"\n"
    "case \"$(pwd -P)\" in \"$PESC_PARAMETER_1\"/*)\n"
    "  if [ -e \"$d/linger\" ]; then echo $$ > \"$d/lingering/$PESC_RANK\"; sleep 60; fi ;;\n"
    "esac\n"
    "sleep 0.2\n"
    "printf 'rank %s %s\\n' \"$PESC_RANK\" $(( PESC_RANK * 2654435761 % 4294967296 ))\n";

// Whether the coordinator has a live stream from this worker.
bool online(Client& client, const std::string& worker_id) {
  auto workers = client.workers();
  if (!workers.ok()) return false;
  return std::any_of(workers->begin(), workers->end(),
                     [&](const WorkerSummary& worker) { return worker.id == worker_id && worker.online; });
}

int count_of(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

// How long the link stays cut.
enum class Outage {
  // Until the job is done, a few seconds: the worker's old connection
  // usually outlives so short a cut, and the reset the coordinator sent its
  // stream reaches it when the link returns.
  kUntilTheJobIsDone,
  // Then on until the worker has given its stream up on its own (its
  // heartbeats go unanswered) and its reconnection attempts vanish too.
  kUntilTheWorkerGivesUp,
};

void cut_mid_job_then_restore(Outage outage) {
  std::string why_not;
  // Declared before the farm so that it goes after the farm's daemons.
  std::unique_ptr<NamespacedLink> link = NamespacedLink::create(why_not);
  if (!link) GTEST_SKIP() << "skipped: " << why_not;

  constexpr milliseconds kLease{1500};
  ScratchDir scratch;
  // The coordinator listens on the veth only (this side's end), which the
  // worker in the namespace reaches through the pair and everything on this
  // side through the local route. No TLS: a test network, hence --insecure-listen.
  TestFarm farm(0, 2, {"--worker-lease-ms", std::to_string(kLease.count()), "--insecure-listen",
                       link->host_address() + ":0"});
  auto client = Client::connect(farm.address(), {.token = farm.admin_token()});
  ASSERT_TRUE(client.ok()) << client.status();
  farm.add_worker(2, {}, link->launcher());  // worker0, behind the link
  ASSERT_TRUE(eventually([&] { return online(**client, "worker0"); }, std::chrono::seconds(20)))
      << "the namespaced worker never connected; see " << (farm.dir() / "worker0.log") << ":\n"
      << read_all(farm.dir() / "worker0.log");
  farm.add_worker(2);  // worker1, on this side
  ASSERT_TRUE(eventually([&] { return online(**client, "worker1"); }));

  const fs::path shared = scratch.path();
  fs::create_directories(shared / "lingering");
  const fs::path cut_worker_dir = fs::weakly_canonical(farm.dir() / "worker0");
  fs::path script = write_script(scratch.path(), "rank.sh", kRankScript);
  constexpr int kRanks = 40;
  Farm submitter("shell", {.coordinator = farm.address()});
  Job job = submitter.map(script, kRanks, {shared.string(), cut_worker_dir.string()});

  // Mid-job: both workers have finished ranks, then worker0 starts ranks
  // that will outlive the cut.
  std::set<std::string> finished_on;
  while (finished_on.size() < 2) {
    auto result = job.next(std::chrono::seconds(30));
    ASSERT_TRUE(result.has_value()) << "the job stalled before the cut";
    finished_on.insert(result->worker);
  }
  std::ofstream(shared / "linger").put('\n');
  ASSERT_TRUE(eventually([&] { return !fs::is_empty(shared / "lingering"); }, std::chrono::seconds(20)))
      << "worker0 started no rank after the linger file appeared";

  ASSERT_EQ(link->cut(), "");
  const auto cut_at = steady_clock::now();
  const auto cut_at_wall = std::chrono::system_clock::now();

  // The coordinator hears nothing more, not even a reset, and declares
  // worker0 lost after its lease, not before.
  ASSERT_TRUE(eventually([&] { return !online(**client, "worker0"); }, std::chrono::seconds(15)))
      << "worker0 was never declared lost";
  const auto lost_after = std::chrono::duration_cast<milliseconds>(steady_clock::now() - cut_at);
  // The lease runs from the last heartbeat, which came up to a quarter of a
  // lease before the cut.
  EXPECT_GE(lost_after, kLease * 3 / 4 - milliseconds(100)) << "lost before its lease ran out";
  std::cout << "worker0 declared lost " << lost_after.count() << " ms after the cut (lease " << kLease.count()
            << " ms)\n";

  // Its ranks finish on worker1, while worker0 still cannot hear a thing.
  Results results = job.wait();
  ASSERT_EQ(results.size(), static_cast<size_t>(kRanks));
  std::string expected;
  for (int rank = 0; rank < kRanks; ++rank) {
    expected += rank_payload(rank);
    const RankResult& result = results[static_cast<size_t>(rank)];
    EXPECT_EQ(result.rank, rank);
    EXPECT_TRUE(result.ok()) << "rank " << rank << ": " << result.output << result.error;
    // Whatever worker0 finished after the cut never reached the coordinator
    // and must not count.
    if (result.worker == "worker0") {
      EXPECT_LT(result.end, cut_at_wall) << "rank " << rank;
    }
  }
  EXPECT_EQ(results.output(), expected) << "every rank once, in rank order, bytes intact";
  EXPECT_EQ(testing::attempts_not_in_runs(results), "") << "an attempt runs one rank or a chunk of consecutive ones";

  std::vector<std::pair<int, pid_t>> lingering;
  for (const auto& entry : fs::directory_iterator(shared / "lingering")) {
    const int rank = std::stoi(entry.path().filename().string());
    lingering.emplace_back(rank, static_cast<pid_t>(std::stol(read_all(entry.path()))));
    EXPECT_EQ(results[static_cast<size_t>(rank)].worker, "worker1") << "rank " << rank << " ran again elsewhere";
    EXPECT_GE(results[static_cast<size_t>(rank)].attempts, 2) << "rank " << rank;
  }
  ASSERT_FALSE(lingering.empty());
  for (const auto& [rank, pid] : lingering) {
    EXPECT_FALSE(testing::process_gone(pid)) << "rank " << rank << "'s first attempt ended while its worker was "
                                             << "unreachable: nothing could have told it to";
  }

  // Back on the network, worker0 notices on its own, reconnects, and is told
  // its attempts are stale: it kills the ranks still running.
  if (outage == Outage::kUntilTheWorkerGivesUp) {
    // Nothing from the coordinator can reach it: what it writes in its log
    // now, it found out by itself.
    ASSERT_TRUE(eventually([&] { return count_of(read_all(farm.dir() / "worker0.log"), "lost the coordinator") > 0; },
                           std::chrono::seconds(40)))
        << "worker0 never noticed its link was dead:\n"
        << read_all(farm.dir() / "worker0.log");
    // Long enough for a reconnection attempt to be under way and unanswered.
    std::this_thread::sleep_for(std::chrono::seconds(3));
  }
  ASSERT_EQ(link->restore(), "");
  const auto restored_at = steady_clock::now();
  ASSERT_TRUE(eventually([&] { return online(**client, "worker0"); }, std::chrono::seconds(60)))
      << "worker0 did not reconnect after the link came back:\n"
      << read_all(farm.dir() / "worker0.log");
  std::cout << "worker0 reconnected "
            << std::chrono::duration_cast<milliseconds>(steady_clock::now() - restored_at).count()
            << " ms after the link came back\n";
  for (const auto& [rank, pid] : lingering) {
    EXPECT_TRUE(eventually([&] { return testing::process_gone(pid); })) << "rank " << rank << "'s stale attempt "
                                                                        << pid << " still runs on worker0";
  }
  const std::string worker_log = read_all(farm.dir() / "worker0.log");
  EXPECT_GE(count_of(worker_log, "connected to the coordinator"), 2) << worker_log;
  EXPECT_GE(count_of(worker_log, "lost the coordinator"), 1) << worker_log;

  // Nothing worker0 says now changes what was accepted.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  Results again = submitter.attach(results.job_id()).wait();
  EXPECT_EQ(again.output(), expected);
  for (size_t rank = 0; rank < again.size(); ++rank) {
    EXPECT_EQ(again[rank].attempt, results[rank].attempt) << "rank " << rank;
    EXPECT_EQ(again[rank].worker, results[rank].worker) << "rank " << rank;
  }

  // And it works again: with worker1 gone, a new job runs on worker0 alone.
  fs::remove(shared / "linger");
  farm.worker(1).kill(SIGKILL);
  farm.worker(1).wait();
  Results after = submitter.map(script, 4, {shared.string(), cut_worker_dir.string()}).wait();
  std::string expected_after;
  for (int rank = 0; rank < 4; ++rank) expected_after += rank_payload(rank);
  EXPECT_EQ(after.output(), expected_after);
  for (const RankResult& result : after) EXPECT_EQ(result.worker, "worker0") << "rank " << result.rank;
}

TEST(LinkCutTest, WorkerCutOffUntilItsRanksRanElsewhereDropsItsStaleAttemptsOnReturn) {
  cut_mid_job_then_restore(Outage::kUntilTheJobIsDone);
}

TEST(LinkCutTest, WorkerCutOffLongEnoughToGiveUpReconnectsWhenTheLinkReturns) {
  cut_mid_job_then_restore(Outage::kUntilTheWorkerGivesUp);
}

}  // namespace
}  // namespace pesc
