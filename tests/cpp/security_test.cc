// Identity, access, TLS and input bounds over real daemons on loopback:
// without the right token or certificate nothing runs, users see only
// their own jobs, and oversized input is refused while others are served.
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <optional>

#include "client/client.h"
#include "client/client_conversion.h"
#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"
#include "pesc/v1/admin.grpc.pb.h"
#include "security/lab_certificates.h"
#include "transport/transport.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::read_all;
using testing::run_command;
using testing::write_script;

// A rank that leaves a file too large to travel inline, so it is a blob.
constexpr const char* kRankWithBlob =
    "echo \"rank $PESC_RANK\"\nhead -c 300000 /dev/zero > \"$PESC_OUTPUT_DIR/big.bin\"\n";

std::string issue_token(const TestFarm& farm, const std::string& name, v1::Role role = v1::ROLE_USER) {
  auto admin = v1::Admin::NewStub(open_channel(farm.address(), {.token = farm.admin_token()}));
  grpc::ClientContext context;
  set_deadline(context, std::chrono::seconds(10));
  v1::IssueTokenRequest request;
  request.set_name(name);
  request.set_role(role);
  v1::IssueTokenResponse response;
  grpc::Status status = admin->IssueToken(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.token();
}

std::shared_ptr<Client> client_with(const TestFarm& farm, ChannelSecurity security) {
  auto client = Client::connect(farm.address(), security);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *client : nullptr;
}

// The first `ranks` finished ranks of a job, by rank.
std::map<int, StoredRankResult> results_of(const std::shared_ptr<Client>& client, const std::string& job_id,
                                           size_t ranks) {
  std::map<int, StoredRankResult> results;
  auto watch = client->watch(job_id);
  while (results.size() < ranks) {
    auto event = watch->next(absl::Seconds(60));
    if (!event || std::holds_alternative<absl::Status>(*event)) break;
    if (auto* result = std::get_if<StoredRankResult>(&*event)) results[result->result.rank] = *result;
  }
  return results;
}

absl::Status download(const TestFarm& farm, const std::string& token, const v1::BlobRef& ref) {
  auto blobs = v1::Blobs::NewStub(open_channel(farm.address(), {.token = token}));
  return download_blob_bytes(*blobs, ref).status();
}

std::vector<std::string> worker_ids_online(const TestFarm& farm) {
  std::vector<std::string> online;
  auto workers = client_with(farm, {.token = farm.admin_token()})->workers();
  if (!workers.ok()) return online;
  for (const WorkerSummary& worker : *workers) {
    if (worker.online) online.push_back(worker.id);
  }
  return online;
}

TEST(SecurityTest, AdminTokenIsMadeOnceWithMode0600) {
  TestFarm farm(0);
  const fs::path file = farm.dir() / "state" / "admin.token";
  struct stat info {};
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(farm.admin_token().rfind("pesc_", 0), 0u) << farm.admin_token();
  EXPECT_NE(read_all(farm.dir() / "coordinator.log").find(farm.admin_token()), std::string::npos);
  // Only its hash is stored.
  EXPECT_EQ(read_all(farm.dir() / "state" / "pesc.sqlite").find(farm.admin_token()), std::string::npos);
  farm.restart_coordinator();
  EXPECT_EQ(read_all(file), farm.admin_token() + "\n");
}

TEST(SecurityTest, NoTokenAndWrongTokenAreRefusedWithHowToGetOne) {
  TestFarm farm(0);
  auto none = client_with(farm, {})->jobs();
  ASSERT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(none.status().message().find("pesc user add NAME"), std::string::npos) << none.status();
  auto wrong = client_with(farm, {.token = "pesc_0123456789"})->jobs();
  ASSERT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(wrong.status().message().find("not valid"), std::string::npos) << wrong.status();
  // The CLI says the same, and exits as for any farm error.
  CommandResult cli =
      run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "--token-file", "/dev/null", "jobs"}, {});
  EXPECT_EQ(cli.exit_code, 3);
  EXPECT_NE(cli.err.find("needs a token"), std::string::npos) << cli.err;
}

TEST(SecurityTest, UsersSeeWaitCancelAndDownloadOnlyTheirOwnJobs) {
  ScratchDir scratch;
  TestFarm farm(1);
  const std::string ana = issue_token(farm, "ana");
  const std::string bob = issue_token(farm, "bob");
  fs::path script = write_script(scratch.path(), "blob.sh", kRankWithBlob);

  // Ana claims to be someone else; the coordinator files the job as hers.
  Farm ana_farm("shell", {.coordinator = farm.address(), .user = "mallory", .token = ana});
  Job job = ana_farm.map(script, 2);
  ASSERT_TRUE(job.wait().ok());
  auto ana_client = client_with(farm, {.token = ana});
  auto info = ana_client->job(job.id());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->user, "ana");
  std::map<int, StoredRankResult> results = results_of(ana_client, job.id(), 2);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_FALSE(results[0].files.blob_sha256.empty()) << "the rank's file should travel as a blob";
  const v1::BlobRef files = to_payload(results[0].files).blob();
  EXPECT_TRUE(download(farm, ana, files).ok());

  auto bob_client = client_with(farm, {.token = bob});
  auto listed = bob_client->jobs();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty()) << "bob sees ana's job";
  EXPECT_EQ(bob_client->job(job.id()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob_client->cancel(job.id()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob_client->delete_job(job.id()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob_client->retry(job.id(), {0}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(bob_client->read_output(job.id(), 0, 0).status().code(), absl::StatusCode::kPermissionDenied);
  auto watch = bob_client->watch(job.id());
  auto refused = watch->next(absl::Seconds(30));
  ASSERT_TRUE(refused.has_value());
  ASSERT_TRUE(std::holds_alternative<absl::Status>(*refused));
  EXPECT_EQ(std::get<absl::Status>(*refused).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(download(farm, bob, files).code(), absl::StatusCode::kPermissionDenied);
  // The spec as ana's token reads it: its process is a blob of hers.
  v1::JobInfo ana_info;
  {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_job_id(job.id());
    auto ana_jobs = v1::Jobs::NewStub(open_channel(farm.address(), {.token = ana}));
    ASSERT_TRUE(ana_jobs->GetJob(&context, request, &ana_info).ok());
  }
  EXPECT_EQ(download(farm, bob, ana_info.spec().process()).code(), absl::StatusCode::kPermissionDenied);
  // Bob may not make ana's process his by naming its hash either.
  v1::SubmitJobRequest borrowed;
  *borrowed.mutable_spec() = ana_info.spec();
  grpc::ClientContext context;
  v1::SubmitJobResponse response;
  auto jobs_stub = v1::Jobs::NewStub(open_channel(farm.address(), {.token = bob}));
  EXPECT_EQ(jobs_stub->SubmitJob(&context, borrowed, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The admin sees everything.
  auto all = client_with(farm, {.token = farm.admin_token()})->jobs();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  auto retried = client_with(farm, {.token = farm.admin_token()})->retry(job.id(), {1});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->ranks.size(), 1u) << "the admin may run anyone's rank again";
  EXPECT_TRUE(ana_client->delete_job(job.id()).ok());
}

TEST(SecurityTest, WorkersNeedAJoinToken) {
  ScratchDir scratch;
  TestFarm farm(0);
  const std::string ana = issue_token(farm, "ana");
  fs::path wrong = write_script(scratch.path(), "wrong.token", "pesc_notatoken\n");
  fs::path user_token = write_script(scratch.path(), "user.token", ana + "\n");
  farm.add_worker(1, {"--token-file", wrong.string()});
  farm.add_worker(1, {"--token-file", user_token.string()});
  fs::path join = write_script(scratch.path(), "join.token", issue_token(farm, "", v1::ROLE_WORKER) + "\n");
  farm.add_worker(1, {"--token-file", join.string()});
  ASSERT_TRUE(eventually([&] { return worker_ids_online(farm) == std::vector<std::string>{"worker2"}; }))
      << "only the worker with a join token registers";
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(worker_ids_online(farm), std::vector<std::string>{"worker2"});
  EXPECT_TRUE(eventually([&] { return read_all(farm.dir() / "worker0.log").find("not valid") != std::string::npos; }))
      << read_all(farm.dir() / "worker0.log");
  EXPECT_TRUE(eventually([&] {
    return read_all(farm.dir() / "worker1.log").find("needs a join token") != std::string::npos;
  })) << read_all(farm.dir() / "worker1.log");
  // The worker runs ana's job, and never sees its own token in a rank.
  fs::path script = write_script(scratch.path(), "env.sh", "echo \"token=${PESC_TOKEN:-none}\"\n");
  Results results = Farm("shell", {.coordinator = farm.address(), .token = ana}).map(script, 2).wait();
  EXPECT_EQ(results.output(), "token=none\ntoken=none\n");
}

TEST(SecurityTest, ARevokedTokenIsRefusedOnItsNextCallAndItsStreamsAreCut) {
  ScratchDir scratch;
  TestFarm farm(0);
  const std::string carol = issue_token(farm, "carol");
  auto client = client_with(farm, {.token = carol});
  ASSERT_TRUE(client->jobs().ok());
  fs::path join = write_script(scratch.path(), "join.token", issue_token(farm, "lab-pc-1", v1::ROLE_WORKER) + "\n");
  farm.add_worker(1, {"--token-file", join.string()});
  ASSERT_TRUE(eventually([&] { return worker_ids_online(farm).size() == 1; }));

  CommandResult revoke =
      run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "user", "revoke", "carol"}, {});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  auto refused = client->jobs();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();

  revoke = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "user", "revoke", "lab-pc-1"}, {});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_TRUE(eventually([&] { return worker_ids_online(farm).empty(); })) << "the worker's stream was not cut";
}

TEST(SecurityTest, AWorkerIdStaysWithTheTokenThatRegisteredItWhileThatWorkerIsConnected) {
  ScratchDir scratch;
  TestFarm farm(0);
  fs::path first = write_script(scratch.path(), "first.token", issue_token(farm, "desk-a", v1::ROLE_WORKER) + "\n");
  fs::path other = write_script(scratch.path(), "other.token", issue_token(farm, "desk-b", v1::ROLE_WORKER) + "\n");
  farm.add_worker(2, {"--token-file", first.string(), "--id", "desk-7"});
  ASSERT_TRUE(eventually([&] { return worker_ids_online(farm) == std::vector<std::string>{"desk-7"}; }));
  farm.add_worker(2, {"--token-file", other.string(), "--id", "desk-7"});
  EXPECT_TRUE(eventually([&] {
    return read_all(farm.dir() / "worker1.log").find("registered with another token") != std::string::npos;
  })) << read_all(farm.dir() / "worker1.log");

  // Every rank runs on the first worker; it was never knocked off.
  fs::path script = write_script(scratch.path(), "where.sh", "pwd\nsleep 0.2\n");
  Results results = Farm("shell", {.coordinator = farm.address()}).map(script, 8).wait();
  for (const RankResult& rank : results) {
    EXPECT_NE(rank.output.find((farm.dir() / "worker0").string()), std::string::npos) << rank.output;
  }
  EXPECT_EQ(read_all(farm.dir() / "worker0.log").find("lost the coordinator"), std::string::npos)
      << read_all(farm.dir() / "worker0.log");

  // The same token again, from a restarted worker, takes its id back.
  farm.restart_worker(0);
  Results again = Farm("shell", {.coordinator = farm.address()}).map(script, 2).wait();
  for (const RankResult& rank : again) {
    EXPECT_NE(rank.output.find((farm.dir() / "worker0").string()), std::string::npos) << rank.output;
  }
}

TEST(SecurityTest, RestrictedRoomsRefuseOthersAtSubmit) {
  ScratchDir scratch;
  TestFarm farm(0);
  const std::string ana = issue_token(farm, "ana");
  const std::string bob = issue_token(farm, "bob");
  CommandResult restrict_room =
      run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "room", "restrict", "lab-b", "ana"}, {});
  ASSERT_EQ(restrict_room.exit_code, 0) << restrict_room.err;
  fs::path script = write_script(scratch.path(), "ok.sh", "true\n");
  try {
    Farm("shell", {.coordinator = farm.address(), .token = bob}).map(script, 1, {}, {.rooms = {"lab-b"}});
    ADD_FAILURE() << "bob submitted to ana's room";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(error.what()).find("room \"lab-b\" is restricted to ana"), std::string::npos) << error.what();
  }
  Job job = Farm("shell", {.coordinator = farm.address(), .token = ana}).map(script, 1, {}, {.rooms = {"lab-b"}});
  job.cancel();
}

TEST(SecurityTest, CliIssuesTokensThatWork) {
  ScratchDir scratch;
  TestFarm farm(0);
  CommandResult add = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "user", "add", "dana"}, {});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  fs::path token_file = write_script(scratch.path(), "dana.token", add.out);
  CommandResult whoami = run_command(
      {PESC_CLI_BINARY, "--coordinator", farm.address(), "--token-file", token_file.string(), "whoami"}, {});
  EXPECT_EQ(whoami.out, "dana (user)\n") << whoami.err;
  CommandResult not_admin = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "--token-file",
                                         token_file.string(), "user", "add", "eve"},
                                        {});
  EXPECT_EQ(not_admin.exit_code, 3);
  EXPECT_NE(not_admin.err.find("only the coordinator's admin"), std::string::npos) << not_admin.err;
  CommandResult twice = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "user", "add", "dana"}, {});
  EXPECT_NE(twice.err.find("already has a token"), std::string::npos) << twice.err;
}

TEST(SecurityTest, WithoutTlsOnlyLoopbackUnlessInsecureListen) {
  ScratchDir scratch;
  CommandResult refused = run_command({PESC_COORDINATOR_BINARY, "--listen", "0.0.0.0:0", "--state-dir",
                                       (scratch.path() / "a").string()});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("without TLS"), std::string::npos) << refused.err;
  testing::Daemon insecure({PESC_COORDINATOR_BINARY, "--insecure-listen", "0.0.0.0:0", "--state-dir",
                            (scratch.path() / "b").string()},
                           scratch.path() / "insecure.log");
  ASSERT_TRUE(eventually([&] { return fs::exists(scratch.path() / "b" / "coordinator.address"); }));
  EXPECT_NE(read_all(scratch.path() / "insecure.log").find("WARNING"), std::string::npos);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(make_lab_certificates(scratch_.path() / "lab", {}).ok());
    ASSERT_TRUE(make_lab_certificates(scratch_.path() / "other", {}).ok());
  }
  std::string pem(const std::string& ca, const std::string& file) { return read_all(scratch_.path() / ca / file); }
  ChannelSecurity security(const std::string& ca, const std::string& token, const std::string& client = "") {
    ChannelSecurity security{.token = token, .tls_ca = pem(ca, "ca.pem")};
    if (!client.empty()) {
      security.tls_cert = pem(client, "client.pem");
      security.tls_key = pem(client, "client.key");
    }
    return security;
  }
  std::vector<std::string> server_flags(bool mutual) {
    std::vector<std::string> flags = {"--tls-cert", (scratch_.path() / "lab" / "server.pem").string(), "--tls-key",
                                      (scratch_.path() / "lab" / "server.key").string()};
    if (mutual) {
      flags.push_back("--tls-client-ca");
      flags.push_back((scratch_.path() / "lab" / "ca.pem").string());
    }
    return flags;
  }
  ScratchDir scratch_;
};

TEST_F(TlsTest, AServerCertificateFromAnotherCaIsRefused) {
  TestFarm farm(0, 2, server_flags(false));
  auto trusted = Client::connect(farm.address(), security("lab", farm.admin_token()));
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_TRUE((*trusted)->jobs().ok());
  auto other = Client::connect(farm.address(), security("other", farm.admin_token()));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("not signed by the CA"), std::string::npos) << other.status();
  auto plain = Client::connect(farm.address(), {.token = farm.admin_token()});
  EXPECT_FALSE(plain.ok() && (*plain)->jobs().ok()) << "a plain-text client got through";
}

TEST_F(TlsTest, MutualTlsRefusesClientsWithoutACertificateFromTheLab) {
  ScratchDir work;
  TestFarm farm(0, 2, server_flags(true));
  auto with_lab_cert = Client::connect(farm.address(), security("lab", farm.admin_token(), "lab"));
  ASSERT_TRUE(with_lab_cert.ok()) << with_lab_cert.status();
  EXPECT_TRUE((*with_lab_cert)->jobs().ok());
  auto with_other_cert = Client::connect(farm.address(), security("lab", farm.admin_token(), "other"));
  EXPECT_FALSE(with_other_cert.ok() && (*with_other_cert)->jobs().ok());
  auto without_cert = Client::connect(farm.address(), security("lab", farm.admin_token()));
  EXPECT_FALSE(without_cert.ok() && (*without_cert)->jobs().ok());
  // A worker and a job over mutual TLS, end to end.
  const fs::path lab = scratch_.path() / "lab";
  farm.add_worker(1, {"--tls-ca", (lab / "ca.pem").string(), "--tls-cert", (lab / "client.pem").string(),
                      "--tls-key", (lab / "client.key").string()});
  fs::path script = write_script(work.path(), "tls.sh", "echo \"rank $PESC_RANK\"\n");
  Results results = Farm("shell", {.coordinator = farm.address(),
                                   .tls_ca = lab / "ca.pem",
                                   .tls_cert = lab / "client.pem",
                                   .tls_key = lab / "client.key"})
                        .map(script, 2)
                        .wait();
  EXPECT_EQ(results.output(), "rank 0\nrank 1\n");
}

// Each TLS mistake is named, not reported as a coordinator that is not
// running, and a listing prints no table header before the error.
TEST_F(TlsTest, TlsMistakesSayWhatIsWrongOnTheCommandLine) {
  const fs::path lab = scratch_.path() / "lab";
  const fs::path other = scratch_.path() / "other";
  auto pesc = [](const std::string& address, std::vector<std::string> flags) {
    std::vector<std::string> argv = {PESC_CLI_BINARY, "--coordinator", address};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("workers");
    return run_command(argv, {});
  };
  auto expect_error = [](const CommandResult& result, const std::string& says) {
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_NE(result.err.find(says), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("start one"), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "") << "a table header before the error";
    EXPECT_EQ(result.err.find("SSL_ERROR"), std::string::npos) << "gRPC's own handshake log: " << result.err;
  };
  {
    TestFarm farm(0, 2, server_flags(false));
    expect_error(pesc(farm.address(), {}), "this coordinator speaks TLS: pass --tls-ca FILE or set PESC_TLS_CA");
    expect_error(pesc(farm.address(), {"--tls-ca", (other / "ca.pem").string()}),
                 "the coordinator's certificate is not signed by the CA given with --tls-ca");
    CommandResult trusted = pesc(farm.address(), {"--tls-ca", (lab / "ca.pem").string()});
    EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
    EXPECT_NE(trusted.out.find("WORKER"), std::string::npos);
  }
  {
    TestFarm farm(0, 2, server_flags(true));
    expect_error(pesc(farm.address(), {"--tls-ca", (lab / "ca.pem").string()}),
                 "this coordinator requires a client certificate (mutual TLS)");
    expect_error(pesc(farm.address(), {"--tls-ca", (lab / "ca.pem").string(), "--tls-cert",
                                       (other / "client.pem").string(), "--tls-key", (other / "client.key").string()}),
                 "this coordinator refused the client certificate");
  }
  {
    TestFarm farm(0);
    expect_error(pesc(farm.address(), {"--tls-ca", (lab / "ca.pem").string()}), "does not speak TLS");
  }
  // Nothing listening keeps the usual advice.
  CommandResult nothing = run_command({PESC_CLI_BINARY, "--coordinator", "127.0.0.1:1", "workers"}, {});
  EXPECT_EQ(nothing.exit_code, 3);
  EXPECT_NE(nothing.err.find("start one"), std::string::npos) << nothing.err;
  EXPECT_EQ(nothing.out, "");
}

// A trusted certificate that names other hosts than the one dialed.
TEST_F(TlsTest, ACertificateForOtherHostsSaysWhichAndHowToReissue) {
  TestFarm farm(0, 2, server_flags(false));
  ChannelSecurity elsewhere = security("lab", farm.admin_token());
  elsewhere.tls_server_name = "head.example";
  auto client = Client::connect(farm.address(), elsewhere);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find(
                "the coordinator's certificate is for localhost, 127.0.0.1, ::1, not head.example: dial one of those "
                "names or reissue with pesc certs init --host head.example"),
            std::string::npos)
      << client.status();
}

// The library says the same to C++, Python and R callers.
TEST_F(TlsTest, TheLibraryNamesAPlaintextClientToATlsCoordinator) {
  TestFarm farm(0, 2, server_flags(false));
  auto plain = Client::connect(farm.address(), {.token = farm.admin_token()});
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("speaks TLS"), std::string::npos) << plain.status();
}

// A worker's log names the mistake too, instead of "cannot reach".
TEST_F(TlsTest, AWorkerWithoutTheCaSaysTheCoordinatorSpeaksTls) {
  TestFarm farm(0, 2, server_flags(false));
  farm.add_worker(1);
  EXPECT_TRUE(eventually([&] { return read_all(farm.dir() / "worker0.log").find("speaks TLS") != std::string::npos; }))
      << read_all(farm.dir() / "worker0.log");
}

TEST_F(TlsTest, UnderMutualTlsAWorkerIdAlsoStaysWithTheCertificateThatRegisteredIt) {
  TestFarm farm(0, 2, server_flags(true));
  const fs::path lab = scratch_.path() / "lab";
  // A second certificate from the lab's CA, as another desktop would have.
  CommandResult request = run_command({"/usr/bin/openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                                       "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=desk-2", "-keyout",
                                       (lab / "desk2.key").string(), "-out", (lab / "desk2.csr").string()});
  ASSERT_EQ(request.exit_code, 0) << request.err;
  CommandResult sign = run_command({"/usr/bin/openssl", "x509", "-req", "-in", (lab / "desk2.csr").string(), "-CA",
                                    (lab / "ca.pem").string(), "-CAkey", (lab / "ca.key").string(),
                                    "-CAcreateserial", "-days", "1", "-out", (lab / "desk2.pem").string()});
  ASSERT_EQ(sign.exit_code, 0) << sign.err;
  auto worker_with = [&](const std::string& cert, const std::string& key) {
    farm.add_worker(1, {"--tls-ca", (lab / "ca.pem").string(), "--tls-cert", (lab / cert).string(), "--tls-key",
                        (lab / key).string(), "--id", "desk-7"});
  };
  // Both present the same token (the farm's); only the certificates differ.
  worker_with("client.pem", "client.key");
  auto client = Client::connect(farm.address(), security("lab", farm.admin_token(), "lab"));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(eventually([&] {
    auto workers = (*client)->workers();
    return workers.ok() && workers->size() == 1 && workers->front().online;
  }));
  worker_with("desk2.pem", "desk2.key");
  EXPECT_TRUE(eventually([&] {
    return read_all(farm.dir() / "worker1.log").find("another token or certificate") != std::string::npos;
  })) << read_all(farm.dir() / "worker1.log");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(read_all(farm.dir() / "worker0.log").find("lost the coordinator"), std::string::npos)
      << read_all(farm.dir() / "worker0.log");
}

TEST(SecurityTest, SizesAboveTheLimitsGetClearErrorsAndOthersAreStillServed) {
  ScratchDir scratch;
  TestFarm farm(1, 2, {"--max-queued-ranks-per-user", "5", "--max-blob-bytes", "100000"});
  const std::string ana = issue_token(farm, "ana");
  fs::path script = write_script(scratch.path(), "ok.sh", "echo \"rank $PESC_RANK\"\n");
  Farm ana_farm("shell", {.coordinator = farm.address(), .token = ana});
  auto expect_refused = [&](ErrorCode code, const std::string& words, auto submit) {
    try {
      submit();
      ADD_FAILURE() << "accepted; expected: " << words;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), code) << error.what();
      EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
    }
  };
  expect_refused(ErrorCode::kInvalidArgument, "parameter 1 has 70000 bytes; at most 65536",
                 [&] { ana_farm.map(script, 1, {std::string(70000, 'x')}); });
  expect_refused(ErrorCode::kInvalidArgument, "10001 parameters given",
                 [&] { ana_farm.map(script, 1, std::vector<std::string>(10001, "p")); });
  expect_refused(ErrorCode::kInvalidArgument, "the job's name has 300 bytes",
                 [&] { ana_farm.map(script, 1, {}, {.name = std::string(300, 'n')}); });
  expect_refused(ErrorCode::kResourceExhausted, "quota of 5",
                 [&] { ana_farm.map(script, 6); });
  // Past gRPC's message cap: refused by the transport itself.
  expect_refused(ErrorCode::kResourceExhausted, "",
                 [&] { ana_farm.map(script, 1, std::vector<std::string>(300, std::string(60000, 'y'))); });
  fs::path big = scratch.path() / "big.sh";
  write_script(scratch.path(), "big.sh", "true\n#" + std::string(200000, 'z') + "\n");
  expect_refused(ErrorCode::kResourceExhausted, "larger than the 100000 bytes", [&] { ana_farm.map(big, 1); });

  Results fine = ana_farm.map(script, 3).wait();
  EXPECT_EQ(fine.output(), "rank 0\nrank 1\nrank 2\n");
  Results admin = Farm("shell", {.coordinator = farm.address()}).map(script, 2).wait();
  EXPECT_EQ(admin.output(), "rank 0\nrank 1\n");
}

}  // namespace
}  // namespace pesc
