// Parallel (gang) jobs on real daemons: every rank placed before any
// starts, all meeting rank 0 over TCP at the address and port the farm gave
// them, restarted whole when a worker dies, refused when they cannot fit.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "client/client.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // the farm harness's

const std::vector<std::string> kShortLease = {"--worker-lease-ms", "1500"};

// Rank 0 listens on MASTER_PORT; every other rank connects to
// MASTER_ADDR:MASTER_PORT and sends its rank and 64 KiB of a pattern of its
// own; rank 0 checks every byte, answers all once all are heard (a
// barrier) and says whom it heard. Each rank first
// notes its start in the log named by parameter 0 and, while the file named
// by parameter 1 exists, waits (so a test can kill a worker mid-gang).
constexpr const char* kMeetRankZero = R"(import os, socket, sys, time
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
flags = sys.argv[1:]
assert flags[flags.index("--master_addr") + 1] == addr and int(flags[flags.index("--master_port") + 1]) == port
with open(sys.argv[-2], "a") as log:
    log.write(f"start {rank}\n")
while os.path.exists(sys.argv[-1]):
    time.sleep(0.05)
def pattern(r):
    return (f"rank {r}:" + "".join(chr(65 + (r * 7 + i) % 26) for i in range(65536))).encode()
if rank == 0:
    server = socket.create_server(("", port))
    server.settimeout(60)
    heard, partners = [], []
    for _ in range(world - 1):
        conn, _ = server.accept()
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        r = int(data.split(b":")[0].split()[1])
        heard.append(f"{r}{'' if data == pattern(r) else ' CORRUPT'}")
        partners.append(conn)
    for conn in partners:  # a barrier: nobody ends before all have met
        conn.sendall(b"ok")
    print("rank 0 heard", " ".join(sorted(heard)))
else:
    deadline = time.time() + 20
    while True:
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    conn.sendall(pattern(rank))
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(60)
    assert conn.recv(2) == b"ok"
    print(f"rank {rank} sent")
)";

std::string expected_meeting(int n) {
  std::string heard = "rank 0 heard";
  for (int rank = 1; rank < n; ++rank) heard += " " + std::to_string(rank);
  std::string text = heard + "\n";
  for (int rank = 1; rank < n; ++rank) text += "rank " + std::to_string(rank) + " sent\n";
  return text;
}

void wait_for_workers(const TestFarm& farm, int online) {
  auto client = Client::connect(farm.address(), {.token = farm.admin_token()});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(eventually([&] {
    auto workers = (*client)->workers();
    return workers.ok() && std::count_if(workers->begin(), workers->end(), [](const WorkerSummary& worker) {
                             return worker.online;
                           }) == online;
  }));
}

// One gang's files: its script, the log of its ranks' starts, and the hold
// file that, while it exists, keeps them from meeting.
struct GangFiles {
  GangFiles(const fs::path& dir, bool held, const std::string& script_prefix = "")
      : script(write_script(dir, "meet.py", script_prefix + kMeetRankZero)), log(dir / "starts"), hold(dir / "hold") {
    if (held) write_script(dir, "hold", "");
  }
  std::vector<std::string> parameters() const { return {log.string(), hold.string()}; }
  fs::path script;
  fs::path log;
  fs::path hold;
};

int lines_in(const fs::path& file) {
  std::string text = read_all(file);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(GangTest, RanksMeetRankZeroOverTcpAndStartTogether) {
  ScratchDir scratch;
  TestFarm farm(2, 2);
  wait_for_workers(farm, 2);
  GangFiles gang(scratch.path(), false);
  Farm client("python", {.coordinator = farm.address()});
  Results results = client.map(gang.script, 4, gang.parameters(), {.parallel = true}).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results.output(), expected_meeting(4));
  std::set<std::string> workers;
  auto first = results[0].start;
  auto last = results[0].start;
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.attempts, 1) << "rank " << rank.rank;
    workers.insert(rank.worker);
    first = std::min(first, rank.start);
    last = std::max(last, rank.start);
  }
  EXPECT_EQ(workers.size(), 2u) << "four ranks need both workers' two slots";
  EXPECT_LT(last - first, std::chrono::seconds(2)) << "the gang starts together";
  EXPECT_EQ(lines_in(gang.log), 4);
}

TEST(GangTest, GangIsRestartedWholeWhenOneOfItsWorkersDies) {
  ScratchDir scratch;
  TestFarm farm(2, 2, kShortLease);
  wait_for_workers(farm, 2);
  GangFiles gang(scratch.path(), true);
  Farm client("python", {.coordinator = farm.address()});
  Job job = client.map(gang.script, 4, gang.parameters(), {.parallel = true});
  ASSERT_TRUE(eventually([&] { return lines_in(gang.log) == 4; }, std::chrono::seconds(30)));
  farm.worker(1).kill(SIGKILL);
  farm.worker(1).wait();
  farm.add_worker(2);  // the gang needs four slots again
  // The whole gang starts again, the survivor's two ranks too. (Until
  // then the hold keeps its first ranks from meeting and finishing.)
  ASSERT_TRUE(eventually([&] { return lines_in(gang.log) == 8; }, std::chrono::seconds(30))) << read_all(gang.log);
  fs::remove(gang.hold);
  Results results = job.wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results.output(), expected_meeting(4));
  std::set<int64_t> attempts;
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.attempts, 2) << "rank " << rank.rank << " on " << rank.worker << ": the whole gang went again";
    EXPECT_NE(rank.worker, "worker1");
    attempts.insert(rank.attempt);
  }
  EXPECT_EQ(attempts.size(), 4u);
  EXPECT_EQ(lines_in(gang.log), 8) << read_all(gang.log);
}

TEST(GangTest, RestartedCoordinatorStartsItsGangsOver) {
  ScratchDir scratch;
  TestFarm farm(2, 2);
  wait_for_workers(farm, 2);
  GangFiles gang(scratch.path(), true);
  // The submitting client outlives the coordinator it submitted to.
  Farm client("python", {.coordinator = farm.address()});
  const std::string job_id = client.map(gang.script, 4, gang.parameters(), {.parallel = true}).id();
  ASSERT_TRUE(eventually([&] { return lines_in(gang.log) == 4; }, std::chrono::seconds(30)));
  farm.restart_coordinator();
  // Whether its gang had started died with the old coordinator: all four
  // ranks start again, and the ranks of the first start are stopped.
  ASSERT_TRUE(eventually([&] { return lines_in(gang.log) == 8; }, std::chrono::seconds(30))) << read_all(gang.log);
  fs::remove(gang.hold);
  Results results = Farm("python", {.coordinator = farm.address()}).attach(job_id).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results.output(), expected_meeting(4));
  for (const RankResult& rank : results) EXPECT_EQ(rank.attempts, 2) << "rank " << rank.rank;
}

TEST(GangTest, RankThatFailsWithAttemptsLeftRestartsTheWholeGang) {
  ScratchDir scratch;
  TestFarm farm(2, 2);
  wait_for_workers(farm, 2);
  // Rank 2 fails on its first start, before meeting rank 0, which is left
  // waiting for it until the gang is restarted.
  GangFiles gang(scratch.path(), false,
                 "import os, sys\n"
                 "failed = sys.argv[-2] + '.failed'\n"
                 "if os.environ['RANK'] == '2' and not os.path.exists(failed):\n"
                 "    open(failed, 'w').close()\n"
                 "    sys.exit(3)\n");
  Farm client("python", {.coordinator = farm.address()});
  Results results =
      client.map(gang.script, 4, gang.parameters(), {.max_attempts = 2, .parallel = true}).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results.output(), expected_meeting(4));
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.attempts, 2) << "rank " << rank.rank << ": its partner's failure restarted it too";
  }
}

TEST(GangTest, GangIsNotStarvedByAnEarlierJobThatKeepsWorkersFull) {
  ScratchDir scratch;
  TestFarm farm(2, 2);
  wait_for_workers(farm, 2);
  fs::path busy = write_script(scratch.path(), "busy.sh", "sleep 0.2\necho \"rank $PESC_RANK\"\n");
  GangFiles gang_files(scratch.path(), false);
  Farm shell("shell", {.coordinator = farm.address()});
  Job crowd = shell.map(busy, 80);
  for (int seen = 0; seen < 4;) seen += crowd.next(std::chrono::seconds(30)).has_value();
  Farm python("python", {.coordinator = farm.address()});
  Results gang = python.map(gang_files.script, 4, gang_files.parameters(), {.parallel = true}).wait();
  ASSERT_TRUE(gang.ok()) << gang.output();
  EXPECT_LT(crowd.progress().succeeded, 80) << "the gang got its slots while the earlier job still had ranks to run";
  Results crowd_results = crowd.wait();
  EXPECT_TRUE(crowd_results.ok());
}

TEST(GangTest, GangLargerThanItsRoomsWaitsSayingWhyUntilEnoughWorkersJoin) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  wait_for_workers(farm, 1);
  GangFiles gang(scratch.path(), false);
  Farm client("python", {.coordinator = farm.address()});
  Job job = client.map(gang.script, 3, gang.parameters(), {.parallel = true});
  ASSERT_TRUE(eventually([&] {
    job.next(std::chrono::milliseconds(100));
    return !job.progress().waiting.empty();
  }));
  EXPECT_NE(job.progress().waiting.find("runs all its 3 ranks at once"), std::string::npos) << job.progress().waiting;
  EXPECT_NE(job.progress().waiting.find("have 2 slots in all (1 workers)"), std::string::npos)
      << job.progress().waiting;
  EXPECT_EQ(lines_in(gang.log), 0) << "no rank starts before all can";
  farm.add_worker(1);
  Results results = job.wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results.output(), expected_meeting(3));
}

}  // namespace
}  // namespace pesc
