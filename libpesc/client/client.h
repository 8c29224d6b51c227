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
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client_types.h"
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
struct PreparedProcess;

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
  absl::StatusOr<JobSummary> job(const std::string& job_id);
  absl::StatusOr<std::vector<JobSummary>> jobs();
  absl::StatusOr<JobSummary> cancel(const std::string& job_id);
  // Forgets a job and its stored results; returns the bytes freed.
  absl::StatusOr<uint64_t> delete_job(const std::string& job_id);
  absl::StatusOr<std::vector<WorkerSummary>> workers();
  // Runs ranks of an ended job again (all that did not succeed when `ranks` is empty).
  absl::StatusOr<RetriedRanks> retry(const std::string& job_id, const std::vector<int>& ranks);
  // A rank's output.txt from `offset` while it runs, or its result once it ended.
  absl::StatusOr<RankOutputPiece> read_output(const std::string& job_id, int rank, int64_t offset);

  // Bytes the farm keeps (a rank's output.txt), fetched when they did not travel inline.
  absl::StatusOr<std::string> fetch(const StoredBytes& bytes);
  // Unpacks a rank's files (the rest of its output_dir, as a tar) into dir.
  absl::Status save_files(const StoredBytes& files, const std::filesystem::path& dir);

  // Follows a job's finished ranks from `after_seq` on.
  std::unique_ptr<JobWatch> watch(const std::string& job_id, int64_t after_seq = 0);

 private:
  friend class JobWatch;  // follows a job over jobs_
  Client(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<void> owner, std::string description,
         std::string address, ChannelSecurity security = {});
  absl::Status explain(const absl::Status& status) const;
  // One SubmitJob; `trusted` gathers the blobs taken as held without asking.
  absl::StatusOr<std::string> submit_once(const SubmitRequest& request, const PreparedProcess& process,
                                          std::vector<std::string>& trusted);
  absl::Status add_shared_files(const std::vector<std::string>& sources, v1::JobSpec& spec,
                                std::vector<std::string>& trusted);
  // Uploads a file's bytes unless the coordinator holds them: a blob it
  // confirmed before is taken as held without asking (and added to
  // `trusted`), saving a round trip on every submit of the same process.
  absl::StatusOr<v1::BlobRef> upload(const std::filesystem::path& file, std::vector<std::string>& trusted);
  void forget_blobs(const std::vector<std::string>& blobs);

  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<void> owner_;
  std::string description_;
  std::string address_;  // empty for an in-process channel
  ChannelSecurity security_;  // to tell a TLS mistake from a coordinator that is not running
  std::unique_ptr<v1::Jobs::Stub> jobs_;
  std::unique_ptr<v1::Blobs::Stub> blobs_;
  absl::Mutex known_blobs_mutex_;
  // The blobs this coordinator said it holds, or took from this client.
  std::set<std::string> known_blobs_ ABSL_GUARDED_BY(known_blobs_mutex_);
};

// A job's events, read on a background thread that reconnects after a
// coordinator restart and resumes where it stopped.
class JobWatch {
 public:
  struct Done {
    JobSummary job;
  };
  using Event = std::variant<StoredRankResult, Progress, Done, absl::Status>;

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
