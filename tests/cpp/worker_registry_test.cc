// The worker registry on its own: sessions without streams or daemons.

#include "registry/worker_registry.h"

#include <limits>
#include <map>
#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

RankResult ended(FailureClass failure_class, int64_t took_ms = 10) {
  RankResult result;
  result.status = failure_class == FailureClass::kNone ? RankStatus::kSucceeded : RankStatus::kFailed;
  result.failure_class = failure_class;
  result.error = failure_class == FailureClass::kNone ? "" : "python3 is missing";
  result.start = from_unix_ms(1000);
  result.end = from_unix_ms(1000 + took_ms);
  return result;
}

WorkerSession online(int slots) {
  WorkerSession session;
  session.slots = slots;
  session.rooms = {kPublicRoom};
  session.outbox = std::make_shared<Outbox>();
  return session;
}

TEST(WorkerSessionTest, TwoWorkerFaultsInARowQuarantineIt) {
  WorkerSession session = online(1);
  session.learn_from(ended(FailureClass::kWorker));
  session.learn_from(ended(FailureClass::kNone));
  session.learn_from(ended(FailureClass::kWorker));
  EXPECT_TRUE(session.quarantined.empty()) << "a success in between resets the count";
  session.learn_from(ended(FailureClass::kWorker));
  EXPECT_NE(session.quarantined.find("2 ranks in a row could not start: python3 is missing"), std::string::npos);
  EXPECT_FALSE(session.takes_ranks());
}

TEST(WorkerSessionTest, TheJobsOwnFaultsAndAPausedWorkersFailuresTellNothingOfItsHealth) {
  WorkerSession session = online(1);
  for (int i = 0; i < 5; ++i) session.learn_from(ended(FailureClass::kJob));
  EXPECT_TRUE(session.quarantined.empty());
  session.paused = "its disk is full";
  for (int i = 0; i < 5; ++i) session.learn_from(ended(FailureClass::kWorker));
  EXPECT_TRUE(session.quarantined.empty()) << "it comes back by itself";
}

TEST(WorkerSessionTest, ItsPaceIsAMovingAverage) {
  WorkerSession session = online(1);
  session.learn_from(ended(FailureClass::kNone, 100));
  EXPECT_DOUBLE_EQ(session.typical_rank_ms, 100);
  session.learn_from(ended(FailureClass::kNone, 200));
  EXPECT_DOUBLE_EQ(session.typical_rank_ms, 120);
}

TEST(WorkerSessionTest, ItStartsItsOldestAttemptsOnePerSlotAndCountsAChunksRanks) {
  WorkerSession session = online(2);
  session.hold(7, "j1", 1, {});
  session.hold(3, "j1", 10, {});
  session.hold(9, "j1", 1, {});
  EXPECT_EQ(session.started_attempts(), (std::set<int64_t>{3, 7}));
  EXPECT_EQ(session.ranks_held(), 12);
}

TEST(WorkerSessionTest, GpusHeldByAttemptsItStillHasAreNotFree) {
  WorkerSession session = online(2);
  session.gpus = {WorkerGpu{.index = 0}, WorkerGpu{.index = 1}};
  session.hold(1, "j1", 1, {0});
  ASSERT_EQ(session.free_gpus().size(), 1u);
  EXPECT_EQ(session.free_gpus()[0].index, 1);
  session.attempts.erase(1);
  EXPECT_EQ(session.free_gpus().size(), 2u);
}

TEST(WorkerRegistryTest, CapacityIsSlotsAndPrefetchLessWhatItHoldsOfHealthyOnlineWorkers) {
  WorkerRegistry registry(/*prefetch_per_slot=*/1);
  registry.sessions()["w1"] = online(2);
  registry.sessions()["w1"].hold(1, "j1", 1, {});
  registry.sessions()["offline"] = online(4);
  registry.sessions()["offline"].outbox.reset();
  registry.sessions()["paused"] = online(4);
  registry.sessions()["paused"].paused = "busy";
  auto capacity = registry.capacity({{"j1", 10}});
  ASSERT_EQ(capacity.size(), 1u);
  EXPECT_EQ(capacity[0].worker_id, "w1");
  EXPECT_EQ(capacity[0].free, 2 * (1 + 1) - 1) << "its rank is short: both slots free soon";
  EXPECT_EQ(registry.idle_slots({})[0].free, 1);
  EXPECT_TRUE(registry.idle_slots({"w1"}).empty());
  EXPECT_EQ(registry.online_slots(), 6);
  ASSERT_EQ(registry.connected().size(), 2u);
  EXPECT_EQ(registry.connected()[0].unavailable, "paused: busy");
}

TEST(WorkerRegistryTest, APilotGetsOnlyRanksOfItsPaceThatEndBeforeItsAllocation) {
  WorkerRegistry registry(/*prefetch_per_slot=*/1);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  WorkerSession pilot = online(1);
  pilot.end_unix_ms = now_ms + 60'000;
  EXPECT_FALSE(pilot.ends_too_soon(now_ms)) << "of unknown pace it gets ranks, and drains before its end";
  pilot.typical_rank_ms = 30'000;
  EXPECT_FALSE(pilot.ends_too_soon(now_ms));
  pilot.typical_rank_ms = 90'000;
  EXPECT_TRUE(pilot.ends_too_soon(now_ms));
  registry.sessions()["pilot"] = pilot;
  EXPECT_TRUE(registry.capacity().empty());
  ASSERT_EQ(registry.connected().size(), 1u);
  EXPECT_EQ(registry.connected()[0].unavailable, "its batch allocation ends before another rank would");
  WorkerSession desktop = online(1);
  desktop.typical_rank_ms = 90'000;
  EXPECT_FALSE(desktop.ends_too_soon(now_ms)) << "no allocation, no end";
}

TEST(WorkerRegistryTest, OnlyRanksKnownToBeShortAreHeldBeyondTheSlotsTheMoreTheShorter) {
  WorkerRegistry registry(/*prefetch_per_slot=*/2);
  EXPECT_EQ(registry.prefetch_per_slot_at(-1), 0) << "pace not known yet: its ranks may take hours";
  EXPECT_EQ(registry.prefetch_per_slot_at(1000), 0) << "a second is long: it would wait behind the slot's rank";
  EXPECT_EQ(registry.prefetch_per_slot_at(60), 2) << "short: at least the least";
  EXPECT_EQ(registry.prefetch_per_slot_at(1), 100) << "100 ms of them";
  WorkerSession& session = registry.sessions()["w1"] = online(1);
  EXPECT_EQ(registry.capacity().at(0).free, 1 + 2) << "its idle slot, and the least beyond it for a short job";
  session.typical_rank_ms = 1;
  EXPECT_EQ(registry.capacity().at(0).free, 101) << "its own pace allows more";
  session.typical_rank_ms = 1000;
  EXPECT_EQ(registry.typical_rank_ms("w1"), 1000);
  EXPECT_EQ(registry.typical_rank_ms("nobody"), std::numeric_limits<double>::infinity());
}

TEST(WorkerRegistryTest, ASlotHeldByARankNotKnownShortMakesNoRoomBeyondIt) {
  WorkerRegistry registry(/*prefetch_per_slot=*/1);
  WorkerSession& session = registry.sessions()["w1"] = online(2);
  session.typical_rank_ms = 1;  // 100 ranks beyond each slot that frees soon
  session.hold(1, "hours", 1, {});
  session.hold(2, "quick", 1, {});
  const std::map<std::string, double> paces = {{"hours", 3'600'000}, {"quick", 1}};
  WorkerCapacity worker = registry.capacity(paces).at(0);
  EXPECT_EQ(worker.slots_freeing_soon, 1);
  EXPECT_EQ(worker.free, 2 + 100 - 2) << "short ranks queue behind the short slot only";
  EXPECT_EQ(worker.held_by_job, (std::map<std::string, int>{{"hours", 1}, {"quick", 1}}));
  session.hold(3, "new", 1, {});  // of unknown pace: it takes the short slot next
  worker = registry.capacity(paces).at(0);
  EXPECT_EQ(worker.slots_freeing_soon, 0);
  EXPECT_LE(worker.free, 0) << "every slot is or will be held long: nothing more until one frees";
  session.attempts.erase(1);
  worker = registry.capacity(paces).at(0);
  EXPECT_EQ(worker.slots_freeing_soon, 1) << "the hour's rank ended";
  EXPECT_EQ(worker.free, 2 + 100 - 2);
  EXPECT_EQ(registry.idle_slots({}).at(0).free, 0) << "idle slots are slots that run nothing";
}

WorkerRegistration registration(const std::string& id, std::vector<int64_t> in_hand = {}) {
  return WorkerRegistration{.worker_id = id,
                            .host = id + ".lab",
                            .slots = 2,
                            .attempts_in_hand = std::move(in_hand),
                            .unavailable_domains = {{"r", "Rscript is not installed"}}};
}

TEST(WorkerRegistryTest, AnIdStaysBoundToTheCredentialItJoinedWith) {
  WorkerRegistry registry(1);
  registry.join(registration("w1"), "10.0.0.7", "token-a", std::make_shared<Outbox>(), absl::Now());
  EXPECT_TRUE(registry.may_join("w1", "token-a").ok());
  EXPECT_EQ(registry.may_join("w1", "token-b").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(registry.may_join("w2", "token-b").ok());
  const WorkerSession& session = *registry.find("w1");
  EXPECT_EQ(session.address, "10.0.0.7");
  EXPECT_EQ(session.rooms, (std::vector<std::string>{kPublicRoom})) << "no room given: the public one";
  EXPECT_EQ(session.unavailable_domains.at("r"), "Rscript is not installed");
}

TEST(WorkerRegistryTest, RejoiningWeighsWhatTheWorkerHoldsAgainstItsSessionAndLiftsAQuarantine) {
  WorkerRegistry registry(1);
  auto first_stream = std::make_shared<Outbox>();
  registry.join(registration("w1"), "", "token", first_stream, absl::Now());
  WorkerSession& session = *registry.find("w1");
  session.hold(1, "j1", 1, {});
  session.hold(2, "j1", 1, {});
  session.quarantined = "2 ranks in a row could not start";
  auto joined = registry.join(registration("w1", {2, 3}), "", "token", std::make_shared<Outbox>(), absl::Now());
  EXPECT_EQ(joined.vanished, (std::vector<int64_t>{1})) << "the coordinator's, lost by the worker";
  EXPECT_EQ(joined.stale, (std::vector<int64_t>{3})) << "the worker's, no longer wanted";
  EXPECT_EQ(session.attempts, (std::set<int64_t>{2}));
  EXPECT_TRUE(session.quarantined.empty());
  EXPECT_TRUE(first_stream->closed()) << "the stale stream of the same id";
}

TEST(WorkerRegistryTest, SessionsSilentPastTheirLeaseExpireWithWhatTheyHeld) {
  WorkerRegistry registry(1);
  const absl::Time start = absl::Now();
  registry.reload({{.id = 5, .job_id = "j1", .worker_id = "gone"}, {.id = 6, .job_id = "j1", .worker_id = "online"}},
                  {{"gone", "token"}}, start);
  registry.sessions()["online"].outbox = std::make_shared<Outbox>();
  EXPECT_EQ(registry.find("gone")->credential, "token") << "kept bound across a restart";
  auto expired = registry.expire(start + absl::Seconds(1));
  EXPECT_EQ(expired.workers, (std::vector<std::string>{"gone"}));
  EXPECT_EQ(expired.attempts, (std::vector<int64_t>{5}));
  EXPECT_EQ(registry.find("gone"), nullptr);
  EXPECT_NE(registry.find("online"), nullptr);
}

TEST(WorkerRegistryTest, RanksQueuedAtAWorkerAreThoseBeyondItsSlots) {
  WorkerRegistry registry(1);
  WorkerSession& session = registry.sessions()["w1"] = online(1);
  session.hold(1, "j1", 1, {});
  session.hold(2, "j2", 4, {});
  EXPECT_EQ(registry.queued_by_job(), (std::map<std::string, int>{{"j1", 0}, {"j2", 4}}));
  const WorkerView view = registry.describe(WorkerRecord{.id = "w1", .slots = 1});
  EXPECT_TRUE(view.online);
  EXPECT_EQ(view.running, 1);
  EXPECT_FALSE(registry.describe(WorkerRecord{.id = "gone"}).online);
}

}  // namespace
}  // namespace pesc
