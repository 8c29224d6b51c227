// End to end: real pesc-coordinator and pesc-worker processes on loopback,
// driven through the public pesc::Farm API, and the same through the
// embedded farm.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "attempt_runs.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::read_all;
using testing::write_script;


// Each rank prints its rank: output() then proves every rank ran once, in order.
constexpr const char* kEchoRank = "echo \"$PESC_RANK\"\n";

std::string expected_ranks(int n) {
  std::string text;
  for (int rank = 0; rank < n; ++rank) text += std::to_string(rank) + "\n";
  return text;
}

constexpr const char* kPrintParsed = R"py(import json
print(json.dumps({"rank": args.rank, "world_size": args.world_size, "parameters": args.parameters,
  "master_addr": args.master_addr, "master_port": args.master_port,
  "app_dir_is_cwd": os.path.realpath(args.app_dir) == os.path.realpath(os.getcwd()),
  "app_dir_slash": args.app_dir.endswith("/"),
  "script_in_app_dir": os.path.exists(os.path.join(args.app_dir, "header.py")),
  "output_dir_exists": os.path.isdir(args.output_dir),
  "checkpoint_dir_exists": os.path.isdir(args.checkpoint_dir),
  "env": {k: os.environ.get(k) for k in ["PESC_RANK", "PESC_WORLD_SIZE", "RANK", "WORLD_SIZE",
          "MASTER_ADDR", "MASTER_PORT", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "PBS_ARRAYID",
          "PESC_OUTPUT_DIR", "PESC_PARAMETER_COUNT"]},
  "output_dir_env_matches": os.environ.get("PESC_OUTPUT_DIR") == args.output_dir}, sort_keys=True))
)py";

// The PESC header as published (tests/data), then every parsed value as JSON.
std::string pesc_header_script() {
  return read_all(fs::path(PESC_TEST_DATA_DIR) / "pesc_header.py") + kPrintParsed;
}

class DaemonFarmTest : public ::testing::Test {
 protected:
  FarmOptions remote() { return FarmOptions{.coordinator = farm_.address()}; }
  ScratchDir scratch_;
  TestFarm farm_{2, 2};
};

TEST_F(DaemonFarmTest, ThousandRanksOverTwoWorkersComeBackOnceInOrder) {
  fs::path script = write_script(scratch_.path(), "echo_rank.sh", kEchoRank);
  Farm farm("shell", remote());
  Results results = farm.map(script, 1000).wait();
  ASSERT_EQ(results.size(), 1000u);
  EXPECT_EQ(results.output(), expected_ranks(1000));
  std::map<std::string, int> per_worker;
  for (size_t rank = 0; rank < results.size(); ++rank) {
    EXPECT_EQ(results[rank].rank, static_cast<int>(rank));
    EXPECT_TRUE(results[rank].ok()) << "rank " << rank << ": " << results[rank].output;
    per_worker[results[rank].worker] += 1;
  }
  EXPECT_EQ(testing::attempts_not_in_runs(results), "") << "an attempt runs one rank or a chunk of consecutive ones";
  EXPECT_EQ(per_worker.size(), 2u) << "both workers took ranks";
}

TEST_F(DaemonFarmTest, PescHeaderGetsEveryFlag) {
  fs::path script = write_script(scratch_.path(), "header.py", pesc_header_script());
  Farm farm("python", remote());
  Results results = farm.map(script, 3, {"3", "0.5"}).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  for (int rank = 0; rank < 3; ++rank) {
    const std::string& out = results[static_cast<size_t>(rank)].output;
    const std::string r = std::to_string(rank);
    EXPECT_NE(out.find("\"rank\": " + r + ","), std::string::npos) << out;
    EXPECT_NE(out.find("\"world_size\": 3"), std::string::npos) << out;
    EXPECT_NE(out.find("\"parameters\": [\"3\", \"0.5\"]"), std::string::npos) << out;
    EXPECT_NE(out.find("\"master_addr\": \"127.0.0.1\", \"master_port\": 9000"), std::string::npos) << out;
    for (const char* truth : {"app_dir_is_cwd", "app_dir_slash", "script_in_app_dir", "output_dir_exists",
                              "checkpoint_dir_exists", "output_dir_env_matches"}) {
      EXPECT_NE(out.find(std::string("\"") + truth + "\": true"), std::string::npos) << truth << " in " << out;
    }
    for (const char* variable : {"PESC_RANK", "RANK", "SLURM_ARRAY_TASK_ID", "PBS_ARRAYID"}) {
      EXPECT_NE(out.find(std::string("\"") + variable + "\": \"" + r + "\""), std::string::npos) << variable << " in " << out;
    }
    for (const char* variable : {"PESC_WORLD_SIZE", "WORLD_SIZE", "SLURM_ARRAY_TASK_COUNT"}) {
      EXPECT_NE(out.find(std::string("\"") + variable + "\": \"3\""), std::string::npos) << variable << " in " << out;
    }
  }
}

TEST_F(DaemonFarmTest, ParametersArriveByteForByte) {
  const std::vector<std::string> parameters = {"with space", "quote\"double", "it's", "ünïcødé ✓", "", "$HOME",
                                               "; rm -rf /", "-5", "tab\there"};
  // Hex of each PESC_PARAMETER_<i>, so nothing is lost to printing.
  fs::path script = write_script(scratch_.path(), "params.sh",
                                 "i=0\n"
                                 "while [ $i -lt $PESC_PARAMETER_COUNT ]; do\n"
                                 "  eval \"v=\\$PESC_PARAMETER_$i\"\n"
                                 "  printf '%s' \"$v\" | od -An -tx1 | tr -d ' \\n'; echo\n"
                                 "  i=$((i+1))\n"
                                 "done\n");
  fs::path header = write_script(scratch_.path(), "header.py", pesc_header_script());
  Farm shell("shell", remote());
  Farm python("python", remote());
  Results from_env = shell.map(script, 2, parameters).wait();
  Results from_flags = python.map(header, 1, parameters).wait();
  ASSERT_TRUE(from_env.ok()) << from_env.output();
  ASSERT_TRUE(from_flags.ok()) << from_flags.output();
  std::string expected;
  for (const std::string& parameter : parameters) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned char c : parameter) expected += {kHex[c >> 4], kHex[c & 0xf]};
    expected += "\n";
  }
  EXPECT_EQ(from_env[0].output, expected);
  EXPECT_EQ(from_env[1].output, expected);
  EXPECT_NE(from_flags[0].output.find(
                R"("parameters": ["with space", "quote\"double", "it's", "\u00fcn\u00efc\u00f8d\u00e9 \u2713", "", "$HOME", "; rm -rf /", "-5", "tab\there"])"),
            std::string::npos)
      << from_flags[0].output;
}

TEST_F(DaemonFarmTest, NonZeroExitIsReportedAndOtherRanksFinish) {
  fs::path script = write_script(scratch_.path(), "fail_odd.sh",
                                 "echo \"rank $PESC_RANK says goodbye\"\n"
                                 "echo oops >&2\n"
                                 "exit $((PESC_RANK % 2 * 3))\n");
  Farm farm("shell", remote());
  Results results = farm.map(script, 6).wait();
  EXPECT_EQ(results.failed_ranks(), (std::vector<int>{1, 3, 5}));
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.exit_code, rank.rank % 2 * 3);
    EXPECT_EQ(rank.output, "rank " + std::to_string(rank.rank) + " says goodbye\noops\n");
    EXPECT_EQ(rank.status, rank.rank % 2 ? RankStatus::kFailed : RankStatus::kSucceeded);
  }
}

TEST_F(DaemonFarmTest, OutputDirComesBackWholeAndBinarySafe) {
  fs::path script = write_script(scratch_.path(), "files.py",
                                 "import os, sys\n"
                                 "out = os.environ['PESC_OUTPUT_DIR']\n"
                                 "rank = int(os.environ['PESC_RANK'])\n"
                                 "os.makedirs(os.path.join(out, 'sub', 'deeper'))\n"
                                 "open(os.path.join(out, 'sub', 'deeper', 'all_bytes.bin'), 'wb')"
                                 ".write(bytes(range(256)) * (rank + 1))\n"
                                 "open(os.path.join(out, 'empty'), 'wb').close()\n"
                                 "sys.stdout.buffer.write(b'\\x00\\xff binary stdout\\n')\n");
  Farm farm("python", remote());
  Results results = farm.map(script, 3).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  results.save(scratch_.path() / "out");
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  for (int rank = 0; rank < 3; ++rank) {
    fs::path rank_dir = scratch_.path() / "out" / ("rank_" + std::to_string(rank));
    std::string expected;
    for (int i = 0; i <= rank; ++i) expected += all_bytes;
    EXPECT_EQ(read_all(rank_dir / "sub" / "deeper" / "all_bytes.bin"), expected);
    EXPECT_TRUE(fs::exists(rank_dir / "empty"));
    EXPECT_EQ(read_all(rank_dir / "output.txt"), std::string("\x00\xff binary stdout\n", 17));
  }
  EXPECT_EQ(read_all(scratch_.path() / "out" / "output.txt"), results.output());
  EXPECT_EQ(results.read_file(1, "sub/deeper/all_bytes.bin"), all_bytes + all_bytes);
  try {
    results.read_file(1, "no/such/file");
    ADD_FAILURE() << "a missing file must be an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(error.what()).find("no/such/file"), std::string::npos) << error.what();
  }
}

TEST_F(DaemonFarmTest, LargeOutputTravelsAsBlob) {
  fs::path script = write_script(scratch_.path(), "big.sh", "head -c 3000000 /dev/zero | tr '\\0' x; echo\n");
  Farm farm("shell", remote());
  Results results = farm.map(script, 2).wait();
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results[1].output, std::string(3000000, 'x') + "\n");
}

TEST_F(DaemonFarmTest, CancelLeavesNoProcessBehind) {
  fs::path pids = scratch_.path() / "pids";
  fs::create_directories(pids);
  // The rank records its pid and its child's in the directory it is given.
  fs::path wrapper = write_script(scratch_.path(), "wrapper.sh",
                                  "sleep 300 &\n"
                                  "echo $! > \"$PESC_PARAMETER_0/child_$PESC_RANK\"\n"
                                  "echo $$ > \"$PESC_PARAMETER_0/rank_$PESC_RANK\"\n"
                                  "wait\n");
  Farm farm("shell", remote());
  Job job = farm.map(wrapper, 8, {pids.string()});
  // Two workers of two slots: four ranks start.
  ASSERT_TRUE(eventually([&] {
    int started = 0;
    // rank_N is written last: its pid and its child's are both there.
    for (const auto& entry : fs::directory_iterator(pids)) {
      started += entry.path().filename().string()[0] == 'r' && read_all(entry.path()).find('\n') != std::string::npos;
    }
    return started == 4;
  }));
  job.cancel();
  Results results = job.wait();
  for (const RankResult& rank : results) EXPECT_EQ(rank.status, RankStatus::kCancelled);
  std::vector<pid_t> started;
  for (const auto& entry : fs::directory_iterator(pids)) {
    // A rank cancelled between creating its file and writing it leaves it empty.
    if (std::string pid = read_all(entry.path()); pid.find('\n') != std::string::npos) {
      started.push_back(static_cast<pid_t>(std::stol(pid)));
    }
  }
  EXPECT_EQ(started.size(), 8u);
  for (pid_t pid : started) {
    EXPECT_TRUE(eventually([&] { return testing::process_gone(pid); })) << "pid " << pid << " still runs";
  }
}

TEST_F(DaemonFarmTest, BadInputsGiveClearErrors) {
  fs::path script = write_script(scratch_.path(), "ok.sh", kEchoRank);
  Farm farm("shell", remote());
  auto error_of = [](auto&& call) -> std::pair<ErrorCode, std::string> {
    try {
      call();
    } catch (const Error& error) {
      return {error.code(), error.what()};
    }
    return {ErrorCode::kUnknown, "no error"};
  };
  auto missing = error_of([&] { farm.map(scratch_.path() / "nope.py", 2); });
  EXPECT_EQ(missing.first, ErrorCode::kNotFound);
  EXPECT_NE(missing.second.find("nope.py\" does not exist"), std::string::npos) << missing.second;

  auto domain = error_of([&] { Farm("pyhton", remote()).map(script, 2); });
  EXPECT_EQ(domain.first, ErrorCode::kInvalidArgument);
  EXPECT_NE(domain.second.find("unknown domain \"pyhton\""), std::string::npos) << domain.second;

  for (int repetitions : {0, -3}) {
    auto none = error_of([&] { farm.map(script, repetitions); });
    EXPECT_EQ(none.first, ErrorCode::kInvalidArgument);
    EXPECT_NE(none.second.find("repetitions must be at least 1"), std::string::npos) << none.second;
  }

  // A zip whose entry climbs out of app_dir is refused before anything runs.
  fs::path zip = scratch_.path() / "evil.zip";
  std::string make_zip = "/usr/bin/python3 -c \"import zipfile; z = zipfile.ZipFile('" + zip.string() +
                         "', 'w'); z.writestr('main.sh', 'echo hi'); z.writestr('../../escaped', 'x'); z.close()\"";
  ASSERT_EQ(std::system(make_zip.c_str()), 0);
  auto evil = error_of([&] { farm.map(zip, 2, {}, {.entry = "main.sh"}); });
  EXPECT_EQ(evil.first, ErrorCode::kInvalidArgument);
  EXPECT_NE(evil.second.find("../../escaped"), std::string::npos) << evil.second;

  fs::path not_zip = write_script(scratch_.path(), "broken.zip", "this is not a zip archive");
  auto broken = error_of([&] { farm.map(not_zip, 1, {}, {.entry = "main.sh"}); });
  EXPECT_EQ(broken.first, ErrorCode::kInvalidArgument) << broken.second;

  auto down = error_of([&] { Farm("shell", {.coordinator = "127.0.0.1:1"}); });
  EXPECT_EQ(down.first, ErrorCode::kUnavailable);
  EXPECT_NE(down.second.find("cannot reach the pesc coordinator at 127.0.0.1:1"), std::string::npos) << down.second;
}

TEST_F(DaemonFarmTest, ArchiveProcessRunsItsEntry) {
  fs::path project = scratch_.path() / "project";
  fs::create_directories(project / "lib");
  write_script(project / "lib", "helper.py", "def greet(rank):\n    return f'hello from {rank}'\n");
  write_script(project, "main.py",
               "import os, sys\nsys.path.insert(0, 'lib')\nfrom helper import greet\n"
               "print(greet(os.environ['PESC_RANK']))\n");
  Farm farm("python", remote());
  Results from_dir = farm.map(project, 2, {}, {.entry = "main.py"}).wait();
  EXPECT_EQ(from_dir.output(), "hello from 0\nhello from 1\n");

  fs::path zip = scratch_.path() / "project.zip";
  std::string make_zip = "cd " + project.string() + " && /usr/bin/python3 -m zipfile -c " + zip.string() +
                         " main.py lib";
  ASSERT_EQ(std::system(make_zip.c_str()), 0);
  Results from_zip = farm.map(zip, 2, {}, {.entry = "main.py"}).wait();
  EXPECT_EQ(from_zip.output(), "hello from 0\nhello from 1\n");
}

TEST_F(DaemonFarmTest, RestartedCoordinatorStillReturnsRecordedResults) {
  fs::path script = write_script(scratch_.path(), "slowish.sh", "sleep 0.2\necho \"$PESC_RANK\"\n");
  Farm farm("shell", remote());
  Job job = farm.map(script, 40);
  const std::string job_id = job.id();
  // Let some ranks finish, then kill the coordinator without warning.
  int seen = 0;
  while (seen < 8) {
    if (job.next(std::chrono::seconds(30))) ++seen;
  }
  farm_.restart_coordinator();
  Results results = Farm("shell", remote()).attach(job_id).wait();
  EXPECT_EQ(results.output(), expected_ranks(40));
  EXPECT_TRUE(results.ok());
}

// Until `farm`'s connection has found a restarted coordinator: its first
// calls fail while its channel still holds the dead connection.
void reconnect(Farm& farm) {
  EXPECT_TRUE(eventually([&] {
    try {
      farm.attach("000000000000");
    } catch (const Error& error) {
      return error.code() != ErrorCode::kUnavailable;
    }
    return true;
  }));
}

// A Farm takes a process the coordinator confirmed holding as still held,
// without asking; when it is gone after all (deleted with its last job),
// the submit is refused and the Farm uploads the process again.
TEST_F(DaemonFarmTest, ProcessDeletedWithItsJobIsUploadedAgain) {
  fs::path script = write_script(scratch_.path(), "echo_rank.sh", kEchoRank);
  Farm farm("shell", remote());
  auto run = [&](int ranks) {
    Results results = farm.map(script, ranks).wait();
    EXPECT_EQ(results.output(), expected_ranks(ranks));
    return results.job_id();
  };
  farm.remove_job(run(2));  // its process blob goes with it, unknown to `farm`
  const std::string second = run(2);
  // Across a restart the coordinator still holds it.
  farm_.restart_coordinator();
  reconnect(farm);
  const std::string third = run(3);
  // Deleted with the last jobs that named it, and the coordinator restarted.
  farm.remove_job(second);
  farm.remove_job(third);
  farm_.restart_coordinator();
  reconnect(farm);
  run(2);
}

TEST_F(DaemonFarmTest, SameMachineJobKeepsItsWorkerAcrossACoordinatorRestart) {
  fs::path script = write_script(scratch_.path(), "slowish.sh", "sleep 0.2\necho \"$PESC_RANK\"\n");
  Farm farm("shell", remote());
  Job job = farm.map(script, 40, {}, {.same_machine = true});
  for (int seen = 0; seen < 4;) seen += job.next(std::chrono::seconds(30)).has_value();
  farm_.restart_coordinator();
  Results results = Farm("shell", remote()).attach(job.id()).wait();
  EXPECT_EQ(results.output(), expected_ranks(40));
  std::set<std::string> workers;
  for (const RankResult& rank : results) workers.insert(rank.worker);
  EXPECT_EQ(workers.size(), 1u);
}

TEST_F(DaemonFarmTest, JobSurvivesItsClient) {
  fs::path script = write_script(scratch_.path(), "echo_rank.sh", "sleep 0.1\n" + std::string(kEchoRank));
  std::string job_id;
  {
    Farm farm("shell", remote());
    job_id = farm.map(script, 10).id();
  }  // the submitting session is gone
  Results results = Farm("shell", remote()).attach(job_id).wait();
  EXPECT_EQ(results.output(), expected_ranks(10));
}

TEST(RoomsTest, RanksRunOnlyInTheJobsRoomsAndSameMachineKeepsThemTogether) {
  ScratchDir scratch;
  TestFarm farm(0);
  farm.add_worker(2, {"--room", "lab-a"});
  farm.add_worker(2, {"--room", "lab-b,public"});
  fs::path script = write_script(scratch.path(), "where.sh", kEchoRank);
  Farm client("shell", {.coordinator = farm.address()});
  Results in_a = client.map(script, 8, {}, {.rooms = {"lab-a"}}).wait();
  EXPECT_EQ(in_a.output(), expected_ranks(8));
  for (const RankResult& rank : in_a) EXPECT_EQ(rank.worker, "worker0");
  Results in_public = client.map(script, 8).wait();
  for (const RankResult& rank : in_public) EXPECT_EQ(rank.worker, "worker1");
  Results together = client.map(script, 12, {}, {.rooms = {"lab-a", "lab-b"}, .same_machine = true}).wait();
  EXPECT_EQ(together.output(), expected_ranks(12));
  std::set<std::string> workers;
  for (const RankResult& rank : together) workers.insert(rank.worker);
  EXPECT_EQ(workers.size(), 1u);

  Job nowhere = client.map(script, 2, {}, {.rooms = {"lab-z"}});
  ASSERT_TRUE(testing::eventually([&] {
    nowhere.next(std::chrono::milliseconds(100));
    return !nowhere.progress().waiting.empty();
  }));
  EXPECT_NE(nowhere.progress().waiting.find("no connected worker is in room lab-z"), std::string::npos)
      << nowhere.progress().waiting;
  farm.add_worker(1, {"--room", "lab-z"});
  EXPECT_EQ(nowhere.wait().output(), expected_ranks(2));
  EXPECT_EQ(nowhere.progress().waiting, "");
}

TEST_F(DaemonFarmTest, SharedFilesReachEveryRankFetchedOncePerWorker) {
  fs::path served = scratch_.path() / "served";
  fs::create_directories(served);
  write_script(served, "table.csv", "a,b\n1,2\n");
  write_script(scratch_.path(), "local.txt", "uploaded once\n");
  write_script(scratch_.path(), "via_file_url.txt", "from a file URL\n");
  testing::Daemon http({"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                        served.string()},
                       scratch_.path() / "http.log");
  std::string port;
  ASSERT_TRUE(eventually([&] {
    std::string log = read_all(scratch_.path() / "http.log");
    size_t at = log.find(" port ");
    if (at == std::string::npos) return false;
    port = log.substr(at + 6, log.find(' ', at + 6) - at - 6);
    return true;
  }));
  fs::path script = write_script(scratch_.path(), "read.sh", "cat local.txt table.csv via_file_url.txt\n");
  Farm farm("shell", remote());
  Results results = farm.map(script, 6, {},
                             {.shared = {(scratch_.path() / "local.txt").string(),
                                         "http://127.0.0.1:" + port + "/table.csv",
                                         "file://" + (scratch_.path() / "via_file_url.txt").string()}})
                        .wait();
  ASSERT_TRUE(results.ok()) << results.output();
  for (const RankResult& rank : results) EXPECT_EQ(rank.output, "uploaded once\na,b\n1,2\nfrom a file URL\n");
  std::string log = read_all(scratch_.path() / "http.log");
  size_t gets = 0;
  for (size_t at = log.find("GET /table.csv"); at != std::string::npos; at = log.find("GET /table.csv", at + 1)) ++gets;
  EXPECT_LE(gets, 2u) << "fetched once per worker, not per rank:\n" << log;

  // A URL that names nothing fails the job itself, as it would on any worker.
  try {
    farm.map(script, 1, {}, {.shared = {"http://127.0.0.1:" + port + "/nope.csv"}}).wait();
    ADD_FAILURE() << "a job whose shared file cannot be fetched must fail";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(error.what()).find("cannot fetch http://127.0.0.1:" + port + "/nope.csv"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(farm.map(script, 2, {}, {.shared = {(scratch_.path() / "local.txt").string(),
                                                "http://127.0.0.1:" + port + "/table.csv",
                                                "file://" + (scratch_.path() / "via_file_url.txt").string()}})
                .wait()
                .failed_ranks()
                .size(),
            0u)
      << "the workers still serve the next job";
}

TEST(EmbeddedFarmTest, SameJobGivesSameResults) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "fail_odd.sh",
                                 "echo \"rank $PESC_RANK of $PESC_WORLD_SIZE: $PESC_PARAMETERS\"\n"
                                 "exit $((PESC_RANK % 2))\n");
  Farm embedded("shell");
  Results local = embedded.map(script, 30, {"a", "b c"}).wait();
  TestFarm daemons(2, 2);
  Results remote = Farm("shell", {.coordinator = daemons.address()}).map(script, 30, {"a", "b c"}).wait();
  ASSERT_EQ(local.size(), remote.size());
  EXPECT_EQ(local.output(), remote.output());
  EXPECT_EQ(local.failed_ranks(), remote.failed_ranks());
  for (size_t rank = 0; rank < local.size(); ++rank) EXPECT_EQ(local[rank].exit_code, remote[rank].exit_code);
  EXPECT_EQ(local[3].output, "rank 3 of 30: a b c\n");
}

TEST(EmbeddedFarmTest, EachRankFindsTheAppDirAsItsProcessHasIt) {
  ScratchDir scratch;
  // Its cwd is app_dir: each rank litters it, and every third one replaces
  // its own script there. The next rank of the slot must see neither.
  fs::path script = write_script(scratch.path(), "litter.sh",
                                 "ls -A \"$PESC_APP_DIR\"\n"
                                 "echo litter > litter.txt\n"
                                 "if [ $((PESC_RANK % 3)) = 0 ]; then cp \"$0\" copy && mv copy \"$0\"; fi\n");
  Farm farm("shell", {.slots = 1});
  Results results = farm.map(script, 200).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  for (size_t rank = 0; rank < results.size(); ++rank) EXPECT_EQ(results[rank].output, "litter.sh\n") << rank;
}

TEST(EmbeddedFarmTest, NativeBinaryWithoutAnyDaemon) {
  ScratchDir scratch;
  fs::copy_file("/bin/echo", scratch.path() / "echo");
  Farm farm("native", {.slots = 2});
  Results results = farm.map(scratch.path() / "echo", 3, {"x"}).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_NE(results[2].output.find("--rank 2 --world_size 3"), std::string::npos) << results[2].output;
  EXPECT_NE(farm.describe().find("embedded"), std::string::npos);
}

TEST(EmbeddedFarmTest, RanksAreIteratedAsTheyFinish) {
  ScratchDir scratch;
  // Higher ranks finish first.
  fs::path script = write_script(scratch.path(), "reverse.sh", "sleep $(( (3 - PESC_RANK) ))\necho $PESC_RANK\n");
  Farm farm("shell", {.slots = 4});
  Job job = farm.map(script, 4);
  std::vector<int> order;
  while (auto rank = job.next()) order.push_back(rank->rank);
  EXPECT_EQ(order, (std::vector<int>{3, 2, 1, 0}));
  EXPECT_EQ(job.wait().output(), expected_ranks(4));
}

}  // namespace
}  // namespace pesc
