#ifndef PESC_COORDINATOR_JOB_NOTIFIER_H_
#define PESC_COORDINATOR_JOB_NOTIFIER_H_

// Tells a job's notify targets (JobSpec.notify) once that it ended: one
// e-mail or JSON POST per target and job, never one per rank. The farm
// tells it "job X ended" after the ledger committed the end; it reads the
// job back and delivers on its own thread, so a slow or unreachable
// receiver never holds up the coordinator. A failed delivery is retried a
// few times with growing pauses, and every failure is logged.
//
// Not durable: notices still queued when the coordinator stops are logged
// as unsent and lost (a crash loses them without a log line).
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/job_types.h"

namespace pesc {

// What a notice says about an ended job.
struct JobOutcome {
  std::string job_id;
  std::string name;
  std::string user;
  std::string outcome;  // "finished", "failed" or "cancelled"
  std::string failure;  // why a failed job failed
  int ranks = 0;
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int64_t wall_ms = 0;       // submitted to ended
  int64_t rank_time_ms = 0;  // every rank's run time, summed
  double speedup = 0.0;      // rank_time / wall

  // `rank_time_ms`: run_time_ms (ledger/job_types.h) summed over the job's results.
  static JobOutcome of(const JobRecord& job, int64_t rank_time_ms);
  std::string to_json() const;
  // An RFC 5322 message: headers, a blank line, a plain-text body.
  std::string to_mail(const std::string& from, const std::string& to) const;
};

struct NotifierSettings {
  std::string smtp_url;  // empty: mailto: targets cannot be served
  std::string smtp_from;
  int attempts = 4;
  absl::Duration first_retry = absl::Seconds(2);  // doubled after each failure
};

class JobNotifier {
 public:
  // An ended job's record and its ranks' run times, summed (read batch by
  // batch: a big job's results are not held at once).
  struct EndedJob {
    JobRecord job;
    int64_t rank_time_ms = 0;
  };
  using ReadJob = std::function<absl::StatusOr<EndedJob>(const std::string& job_id)>;

  JobNotifier(NotifierSettings settings, ReadJob read_job);
  // Abandons what is under way and logs every notice not sent.
  ~JobNotifier();
  JobNotifier(const JobNotifier&) = delete;
  JobNotifier& operator=(const JobNotifier&) = delete;

  // After the ledger committed the job's end; cheap: it is only queued.
  void job_ended(const std::string& job_id);

 private:
  struct Delivery {
    std::string job_id;
    std::string target;
    JobOutcome outcome;
    int attempts_made = 0;
    absl::Time due;
  };

  bool has_news() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_ || !ended_.empty(); }
  void run();
  // Reads the job and queues one delivery per target.
  void prepare(const std::string& job_id);
  absl::Status deliver(const Delivery& delivery);
  void send_due();

  const NotifierSettings settings_;
  const ReadJob read_job_;
  std::atomic<bool> abandon_{false};

  absl::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<std::string> ended_ ABSL_GUARDED_BY(mutex_);
  // Touched only by the notifier's thread.
  std::vector<Delivery> deliveries_;
  std::thread thread_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_JOB_NOTIFIER_H_
