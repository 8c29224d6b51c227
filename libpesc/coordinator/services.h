#ifndef PESC_COORDINATOR_SERVICES_H_
#define PESC_COORDINATOR_SERVICES_H_

// gRPC adapters over FarmState: they translate messages and statuses and
// hold no state of their own.

#include "coordinator/access.h"
#include "coordinator/farm_state.h"
#include "pesc/v1/pesc.grpc.pb.h"

namespace pesc {

// WatchJob is a callback method: a watcher waiting for news holds no thread.
class JobsService final : public v1::Jobs::WithCallbackMethod_WatchJob<v1::Jobs::Service> {
 public:
  JobsService(FarmState& state, Access& access) : state_(state), access_(access) {}
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*, v1::SubmitJobResponse*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::JobInfo*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*, v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*, v1::CancelJobResponse*) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext*, const v1::WatchJobRequest*) override;
  grpc::Status DeleteJob(grpc::ServerContext*, const v1::DeleteJobRequest*, v1::DeleteJobResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*, v1::ListWorkersResponse*) override;
  grpc::Status RetryRanks(grpc::ServerContext*, const v1::RetryRanksRequest*, v1::RetryRanksResponse*) override;
  grpc::Status ReadRankOutput(grpc::ServerContext*, const v1::ReadRankOutputRequest*, v1::RankOutput*) override;

 private:
  FarmState& state_;
  Access& access_;
};

class BlobsService final : public v1::Blobs::Service {
 public:
  BlobsService(FarmState& state, Access& access) : state_(state), access_(access) {}
  grpc::Status StatBlob(grpc::ServerContext*, const v1::StatBlobRequest*, v1::StatBlobResponse*) override;
  grpc::Status UploadBlob(grpc::ServerContext*, grpc::ServerReader<v1::BlobChunk>*, v1::BlobRef*) override;
  grpc::Status DownloadBlob(grpc::ServerContext*, const v1::DownloadBlobRequest*,
                            grpc::ServerWriter<v1::BlobChunk>*) override;

 private:
  FarmState& state_;
  Access& access_;
};

// Connect is a callback method: an idle worker's stream holds no thread.
class WorkersService final : public v1::Workers::WithCallbackMethod_Connect<v1::Workers::Service> {
 public:
  WorkersService(FarmState& state, Access& access) : state_(state), access_(access) {}
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Connect(grpc::CallbackServerContext*) override;

 private:
  FarmState& state_;
  Access& access_;
};

}  // namespace pesc

#endif  // PESC_COORDINATOR_SERVICES_H_
