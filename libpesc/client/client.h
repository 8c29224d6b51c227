#ifndef PESC_CLIENT_CLIENT_H_
#define PESC_CLIENT_CLIENT_H_

// The one client library under pesc::Farm, the `pesc` command line and the
// bindings: submit, watch, cancel, list, fetch outputs. None of those
// re-implements job logic; they all call this.
//
// Thread-safety: a Client may be shared between threads.

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pesc/pesc.h"
#include "pesc/v1/pesc.grpc.pb.h"
#include "transport/transport.h"

namespace pesc {

struct SubmitRequest {
  std::string domain;
  std::filesystem::path process;
  int repetitions = 0;
  std::vector<std::string> parameters;
  std::string user;
  MapOptions options;  // entry, name, retries, rooms, shared files, ...
};

class JobWatch;

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Connects to a running coordinator and checks that it answers.
  static absl::StatusOr<std::shared_ptr<Client>> connect(const std::string& address,
                                                         const ChannelSecurity& security = {});
  // Over a channel someone else owns (the embedded farm); `owner` is kept
  // alive as long as the client.
  static std::shared_ptr<Client> over_channel(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<void> owner,
                                              std::string description);

  const std::string& description() const { return description_; }

  absl::StatusOr<std::string> submit(const SubmitRequest& request);
  absl::StatusOr<v1::JobInfo> job(const std::string& job_id);
  absl::StatusOr<std::vector<v1::JobInfo>> jobs();
  absl::StatusOr<v1::JobInfo> cancel(const std::string& job_id);
  // Forgets a job and its stored results; returns the bytes freed.
  absl::StatusOr<uint64_t> delete_job(const std::string& job_id);
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers();
  // Runs ranks of an ended job again (all that did not succeed when `ranks` is empty).
  absl::StatusOr<v1::RetryRanksResponse> retry(const std::string& job_id, const std::vector<int>& ranks);
  // A rank's output.txt from `offset` while it runs, or its result once it ended.
  absl::StatusOr<v1::RankOutput> read_output(const std::string& job_id, int rank, int64_t offset);

  // A rank's output.txt, fetched when it did not travel inline.
  absl::StatusOr<std::string> output_text(const v1::RankResult& result);
  // Writes the files a rank left in its output_dir (not output.txt) into dir.
  absl::Status save_files(const v1::RankResult& result, const std::filesystem::path& dir);

  // Follows a job's finished ranks from `after_seq` on.
  std::unique_ptr<JobWatch> watch(const std::string& job_id, int64_t after_seq = 0);

  v1::Jobs::Stub& jobs_stub() { return *jobs_; }

 private:
  Client(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<void> owner, std::string description,
         std::string address, ChannelSecurity security = {});
  absl::Status explain(const absl::Status& status) const;
  absl::Status add_shared_files(const std::vector<std::string>& sources, v1::JobSpec& spec);

  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<void> owner_;
  std::string description_;
  std::string address_;  // empty for an in-process channel
  ChannelSecurity security_;  // to tell a TLS mistake from a coordinator that is not running
  std::unique_ptr<v1::Jobs::Stub> jobs_;
  std::unique_ptr<v1::Blobs::Stub> blobs_;
};

// A job's events, read on a background thread that reconnects after a
// coordinator restart and resumes where it stopped.
class JobWatch {
 public:
  struct Done {
    v1::JobInfo job;
  };
  using Event = std::variant<v1::RankResult, v1::JobProgress, Done, absl::Status>;

  JobWatch(std::shared_ptr<Client> client, std::string job_id, int64_t after_seq);
  ~JobWatch();

  // The next event, or nullopt when `timeout` passes first. After Done or an
  // error status no more events come.
  std::optional<Event> next(absl::Duration timeout);

 private:
  void read_loop();
  absl::Status follow(int64_t& after_seq, bool& done);
  void push(Event event);

  std::shared_ptr<Client> client_;
  const std::string job_id_;
  int64_t after_seq_;

  absl::Mutex mutex_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mutex_);
  bool closing_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mutex_) = nullptr;
  std::thread reader_;
};

}  // namespace pesc

#endif  // PESC_CLIENT_CLIENT_H_
