// The coordinator's edge: what workers send of themselves as the registry's
// plain types, and a worker as clients are told of it, every field kept.
#include "registry/registry_conversion.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "job_store_examples.h"
#include "proto_fields.h"

namespace pesc {

namespace {

v1::Gpu every_gpu_field(int index) {
  v1::Gpu gpu;
  gpu.set_index(index);
  gpu.set_name("RTX 3090");
  gpu.set_memory_bytes(int64_t{24} << 30);
  gpu.set_compute_capability(8.6);
  return gpu;
}

TEST(RegistryConversionTest, AGpuKeepsEveryField) {
  const v1::Gpu proto = every_gpu_field(1);
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  expect_same(proto, to_proto(from_proto(proto)));
}

TEST(RegistryConversionTest, ARegistrationKeepsEveryField) {
  v1::RegisterWorker proto;
  proto.set_worker_id("w1");
  proto.set_host("w1.lab");
  proto.set_slots(4);
  proto.add_attempts_in_hand(7);
  proto.add_attempts_in_hand(9);
  proto.add_rooms("lab");
  *proto.add_gpus() = every_gpu_field(0);
  proto.set_paused_reason("owner present");
  v1::HeldGpus& held = *proto.add_held_gpus();
  held.set_attempt_id(7);
  held.add_gpus(0);
  v1::UnavailableDomain& unavailable = *proto.add_unavailable_domains();
  unavailable.set_domain("R");
  unavailable.set_why("Rscript is not installed");
  proto.set_end_unix_ms(99);
  proto.set_version("1.2.3");
  proto.add_domains("python");
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";

  const WorkerRegistration registration = from_proto(proto);
  EXPECT_EQ(registration.worker_id, "w1");
  EXPECT_EQ(registration.host, "w1.lab");
  EXPECT_EQ(registration.slots, 4);
  EXPECT_EQ(registration.attempts_in_hand, (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(registration.rooms, std::vector<std::string>{"lab"});
  EXPECT_EQ(registration.gpus, std::vector<WorkerGpu>{from_proto(every_gpu_field(0))});
  EXPECT_EQ(registration.paused_reason, "owner present");
  EXPECT_EQ(registration.held_gpus, (std::map<int64_t, std::vector<int>>{{7, {0}}}));
  EXPECT_EQ(registration.unavailable_domains, (std::map<std::string, std::string>{{"R", "Rscript is not installed"}}));
  EXPECT_EQ(registration.end_unix_ms, 99);
  EXPECT_EQ(registration.version, "1.2.3");
  EXPECT_EQ(registration.domains, std::vector<std::string>{"python"});
}

TEST(RegistryConversionTest, AHeartbeatKeepsWhatTheCoordinatorReads) {
  v1::Heartbeat proto;
  proto.set_running(2);  // not read: the registry counts what the worker holds itself
  proto.set_paused_reason("CPU busy");
  proto.set_throttled_reason("owner present");
  proto.add_returned_attempts(5);
  proto.set_host_cpu_percent(42.5);
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";

  const WorkerHeartbeat heartbeat = from_proto(proto);
  EXPECT_EQ(heartbeat.paused_reason, "CPU busy");
  EXPECT_EQ(heartbeat.throttled_reason, "owner present");
  EXPECT_EQ(heartbeat.returned_attempts, std::vector<int64_t>{5});
  EXPECT_EQ(heartbeat.host_cpu_percent, 42.5);
}

TEST(RegistryConversionTest, ARegistrationsAnswerKeepsEveryField) {
  v1::Registered expected;
  expected.set_heartbeat_ms(1'000);
  expected.add_stale_attempts(3);
  expected.set_state_dir("/var/lib/pesc");
  expected.set_idle_keepalive_ms(10'000);
  ASSERT_EQ(unset_fields(expected), std::vector<std::string>{}) << "set the new fields above";
  expect_same(expected, to_proto(RegistrationAnswer{.heartbeat_ms = 1'000,
                                                    .idle_keepalive_ms = 10'000,
                                                    .state_dir = "/var/lib/pesc",
                                                    .stale_attempts = {3}}));
}

TEST(RegistryConversionTest, AWorkerViewIsTheWorkerInfoClientsSee) {
  v1::WorkerInfo expected;
  expected.set_id("w1");
  expected.set_host("w1.lab");
  expected.set_slots(4);
  expected.set_running(3);
  expected.set_online(true);
  expected.set_last_seen_unix_ms(10);
  expected.set_ranks_done(12);
  expected.set_quarantined("2 ranks in a row could not start");
  expected.add_rooms("lab");
  *expected.add_gpus() = every_gpu_field(0);
  expected.set_paused("owner present");
  expected.set_throttled("CPU busy");
  v1::UnavailableDomain& unavailable = *expected.add_unavailable_domains();
  unavailable.set_domain("R");
  unavailable.set_why("Rscript is not installed");
  expected.set_end_unix_ms(99);
  expected.set_version("1.2.3");
  expected.set_host_cpu_percent(42.5);
  expected.add_domains("python");
  ASSERT_EQ(unset_fields(expected), std::vector<std::string>{}) << "set the new fields above";

  const WorkerView view{
      .record = {.id = "w1", .host = "w1.lab", .slots = 4, .last_seen_unix_ms = 10, .ranks_done = 12},
      .online = true,
      .running = 3,
      .quarantined = "2 ranks in a row could not start",
      .paused = "owner present",
      .throttled = "CPU busy",
      .rooms = {"lab"},
      .gpus = {from_proto(every_gpu_field(0))},
      .unavailable_domains = {{"R", "Rscript is not installed"}},
      .end_unix_ms = 99,
      .version = "1.2.3",
      .host_cpu_percent = 42.5,
      .domains = {"python"}};
  expect_same(expected, to_proto(view));
  ASSERT_EQ(to_proto(std::vector<WorkerView>{view, view}).size(), 2u);
}

TEST(RegistryConversionTest, AnAssignmentCarriesTheAttemptAlone) {
  const AttemptOrder order{.job_id = "j1",
                           .attempt_id = 42,
                           .rank = 3,
                           .rank_count = 2,
                           .checkpoint = BlobId{.sha256 = std::string(64, 'c')},
                           .gpus = {1}};
  const v1::Assignment assignment = to_proto(order);
  EXPECT_EQ(assignment.job_id(), "j1");
  EXPECT_EQ(assignment.attempt_id(), 42);
  EXPECT_EQ(assignment.rank(), 3);
  EXPECT_EQ(assignment.rank_count(), 2);
  EXPECT_EQ(assignment.gpus(0), 1);
  EXPECT_EQ(assignment.checkpoint().sha256(), std::string(64, 'c'));
  EXPECT_TRUE(assignment.master_addr().empty()) << "the rank contract's default, left to the worker";
}

TEST(RegistryConversionTest, AGangStartKeepsEveryField) {
  const v1::StartGang start = to_proto(GangStart{.master_addr = "10.0.0.1", .master_port = 29500, .attempt_ids = {4, 5}});
  ASSERT_EQ(unset_fields(start), std::vector<std::string>{}) << "GangStart lacks a field the protocol has";
  EXPECT_EQ(start.master_addr(), "10.0.0.1");
  EXPECT_EQ(start.master_port(), 29500);
  EXPECT_EQ(std::vector<int64_t>(start.attempt_ids().begin(), start.attempt_ids().end()), (std::vector<int64_t>{4, 5}));
}

TEST(RegistryConversionTest, TheJobsDescriptionCarriesWhatEveryRankRuns) {
  JobSpec spec = spec_of(8);
  spec.options.timeout = std::chrono::milliseconds(5000);
  spec.parameters.push_back("--fast");
  spec.options.parallel = true;
  const v1::JobDescription job = description_for("j1", spec);
  EXPECT_EQ(job.job_id(), "j1");
  EXPECT_EQ(job.world_size(), 8);
  EXPECT_EQ(job.timeout_ms(), 5000);
  EXPECT_EQ(job.parameters(job.parameters_size() - 1), "--fast");
  EXPECT_EQ(job.entry(), spec.options.entry);
  EXPECT_TRUE(job.gang());
  EXPECT_TRUE(job.network()) << "a gang's ranks meet over the network";
}

}  // namespace
}  // namespace pesc
