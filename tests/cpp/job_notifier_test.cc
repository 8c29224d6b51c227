// What a job's notice says, and how the notifier copes with a receiver that
// is not there: it logs, retries a few times, gives up, and stops at once
// when the coordinator does. Deliveries to live receivers are tested end to
// end against real daemons in tests/python/test_notify.py.

#include "coordinator/job_notifier.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

JobRecord ended_job(JobState state) {
  JobRecord job{.id = "abc123",
                .state = state,
                .progress = {.total = 3, .succeeded = 2, .failed = 1},
                .created_unix_ms = 1'000,
                .finished_unix_ms = 11'000};
  job.spec.options.name = "sweep \"one\"\r\nBcc: someone@else";
  job.spec.user = "ada";
  return job;
}

// Three ranks that ran for the job's whole 10 s, and one that never started.
int64_t three_ranks() {
  RankResult result;
  result.start = from_unix_ms(1'000);
  result.end = from_unix_ms(11'000);
  RankResult never_started;
  never_started.end = from_unix_ms(11'000);
  return 3 * run_time_ms(result) + run_time_ms(never_started);
}

// A finished job whose one notify target nobody listens at (port 1).
absl::StatusOr<JobNotifier::EndedJob> for_nobody(const std::string&) {
  JobNotifier::EndedJob ended{.job = ended_job(JobState::kFinished)};
  ended.job.spec.options.notify.push_back("http://127.0.0.1:1/nobody-listens");
  return ended;
}

TEST(JobOutcomeTest, SaysTheOutcomeCountsWallTimeAndSpeedup) {
  const JobOutcome outcome = JobOutcome::of(ended_job(JobState::kFinished), three_ranks());
  EXPECT_EQ(outcome.outcome, "finished");
  EXPECT_EQ(outcome.wall_ms, 10'000);
  EXPECT_EQ(outcome.rank_time_ms, 30'000);
  EXPECT_DOUBLE_EQ(outcome.speedup, 3.0);
  EXPECT_EQ(JobOutcome::of(ended_job(JobState::kCancelled), 0).outcome, "cancelled");
  EXPECT_EQ(JobOutcome::of(ended_job(JobState::kFailed), 0).outcome, "failed");
}

TEST(JobOutcomeTest, AJobsNameCannotBreakTheJsonOrAddMailHeaders) {
  const JobOutcome outcome = JobOutcome::of(ended_job(JobState::kFinished), three_ranks());
  const std::string json = outcome.to_json();
  EXPECT_NE(json.find(R"("name":"sweep \"one\"\r\nBcc: someone@else")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("outcome":"finished")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("speedup":3.000)"), std::string::npos) << json;
  const std::string mail = outcome.to_mail("farm@lab", "ada@lab");
  EXPECT_EQ(mail.find("\r\nBcc:"), std::string::npos) << mail;
  EXPECT_NE(mail.find("Subject: pesc job sweep \"one\"  Bcc: someone@else (abc123) finished\r\n"), std::string::npos)
      << mail;
  EXPECT_NE(mail.find("Ranks: 3 (2 succeeded, 1 failed, 0 cancelled)"), std::string::npos) << mail;
}

TEST(JobNotifierTest, AnUnreachableReceiverIsRetriedThenGivenUpOnWithALogLine) {
  std::atomic<int> reads{0};
  testing::internal::CaptureStderr();
  {
    JobNotifier notifier({.attempts = 3, .first_retry = absl::Milliseconds(20)}, [&](const std::string& job_id) {
      ++reads;
      return for_nobody(job_id);
    });
    notifier.job_ended("abc123");
    // Three refused tries 20 and 40 ms apart take well under this.
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("failed, will retry in 20ms"), std::string::npos) << log;
  EXPECT_NE(log.find("failed, will retry in 40ms"), std::string::npos) << log;
  EXPECT_NE(log.find("was not sent (gave up after 3 tries)"), std::string::npos) << log;
  EXPECT_EQ(log.find("the coordinator stopped"), std::string::npos) << log;
  EXPECT_EQ(reads, 1);  // the job is read once, not once per try
}

TEST(JobNotifierTest, StoppingWhileRetryingLogsTheNoticeAsUnsentAndDoesNotWait) {
  testing::internal::CaptureStderr();
  const auto started = std::chrono::steady_clock::now();
  {
    JobNotifier notifier({.attempts = 5, .first_retry = absl::Seconds(60)}, for_nobody);
    notifier.job_ended("abc123");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_NE(log.find("will retry"), std::string::npos) << log;
  EXPECT_NE(log.find("the notice of job abc123 to http://127.0.0.1:1/nobody-listens was not sent: the coordinator "
                     "stopped"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace pesc
