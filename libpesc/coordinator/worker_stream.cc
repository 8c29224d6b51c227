#include "coordinator/worker_stream.h"

#include <string_view>
#include <utility>

#include "common/status_macros.h"
#include "ledger/ledger_conversion.h"
#include "registry/registry_conversion.h"
#include "security/input_limits.h"
#include "transport/transport.h"

namespace pesc {
namespace {

// The IP in a gRPC peer ("ipv4:10.0.0.7:51234", "ipv6:[::1]:51234"); empty
// for other transports (the embedded farm's in-process channel).
std::string peer_ip(const std::string& peer) {
  for (const std::string_view prefix : {"ipv4:", "ipv6:"}) {
    if (!peer.starts_with(prefix)) continue;
    std::string_view address = std::string_view(peer).substr(prefix.size());
    address = address.substr(0, address.rfind(':'));
    if (address.starts_with('[') && address.ends_with(']')) address = address.substr(1, address.size() - 2);
    return std::string(address);
  }
  return "";
}

}  // namespace

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* WorkerStream::start(
    FarmState& state, Access& access, grpc::CallbackServerContext* context) {
  auto caller = access.authenticate(*context, Needs::kWorker);
  std::shared_ptr<WorkerStream> stream(new WorkerStream(state, context, caller.ok() ? *caller : Caller{}));
  stream->self_ = stream;
  if (!caller.ok()) {
    stream->end(to_grpc(caller.status()));
    return stream.get();
  }
  stream->session_ = access.hold(*caller, context);
  stream->StartRead(&stream->reading_);
  return stream.get();
}

WorkerStream::WorkerStream(FarmState& state, grpc::CallbackServerContext* context, Caller caller)
    : state_(state), context_(context), caller_(std::move(caller)) {}

void WorkerStream::OnReadDone(bool ok) {
  if (!ok) {
    end(grpc::Status::OK);  // the worker went
    return;
  }
  if (worker_id_.empty()) {
    if (absl::Status registered = register_worker(); !registered.ok()) {
      end(to_grpc(registered));
      return;
    }
  } else {
    handle(reading_);
  }
  StartRead(&reading_);
}

absl::Status WorkerStream::register_worker() {
  if (!reading_.has_register_()) return absl::InvalidArgumentError("a worker's first message must register it");
  if (absl::Status checked = check_registration(reading_.register_()); !checked.ok()) return checked;
  auto outbox = std::make_shared<Outbox>();
  outbox->on_ready([weak = std::weak_ptr<WorkerStream>(self_)] {
    if (std::shared_ptr<WorkerStream> stream = weak.lock()) stream->outbox_ready();
  });
  {
    absl::MutexLock lock(&mutex_);
    outbox_ = outbox;
  }
  PESC_RETURN_IF_ERROR(
      state_.connect_worker(from_proto(reading_.register_()), peer_ip(context_->peer()), caller_.credential, outbox));
  worker_id_ = reading_.register_().worker_id();
  return absl::OkStatus();
}

void WorkerStream::handle(const v1::WorkerMessage& message) {
  if (message.has_finished_batch()) {
    state_.worker_finished(worker_id_, attempts_ended_of(message.finished_batch()));
  } else if (message.has_checkpoint()) {
    const v1::CheckpointSaved& saved = message.checkpoint();
    state_.worker_checkpoint(worker_id_, saved.attempt_id(), from_proto(saved.checkpoint()));
  } else if (message.has_gang_ready()) {
    state_.worker_gang_ready(worker_id_, message.gang_ready().attempt_id(), message.gang_ready().free_port());
  } else if (message.has_heartbeat()) {
    state_.worker_heartbeat(worker_id_, from_proto(message.heartbeat()));
  } else if (message.has_output_read()) {
    state_.worker_output_read(worker_id_, from_proto(message.output_read()));
  } else {
    state_.worker_heard(worker_id_);
  }
}

void WorkerStream::OnWriteDone(bool ok) {
  if (!ok) {
    absl::MutexLock lock(&mutex_);
    if (!ending_) {
      ending_ = true;
      end_status_ = grpc::Status::CANCELLED;
    }
  }
  write_next();  // this thread still holds the turn
}

void WorkerStream::OnCancel() { end(grpc::Status::CANCELLED); }

void WorkerStream::end(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mutex_);
    if (!ending_) {
      ending_ = true;
      end_status_ = status;
    }
  }
  outbox_ready();
}

void WorkerStream::outbox_ready() {
  {
    absl::MutexLock lock(&mutex_);
    ready_ = true;
    if (turn_taken_) return;  // its holder looks again before it lets go
    turn_taken_ = true;
  }
  write_next();
}

void WorkerStream::write_next() {
  while (true) {
    std::shared_ptr<Outbox> outbox;
    {
      absl::MutexLock lock(&mutex_);
      if (ending_) break;
      ready_ = false;
      outbox = outbox_;
    }
    if (outbox) {
      if (std::optional<v1::CoordinatorMessage> next = outbox->pop()) {
        writing_ = *std::move(next);
        StartWrite(&writing_);
        return;
      }
    }
    absl::MutexLock lock(&mutex_);
    if (outbox && outbox->closed() && !ending_) {
      // FarmState cut the stream: the worker was silent past its lease, or
      // the coordinator shuts down, or the worker registered again.
      ending_ = true;
      end_status_ = grpc::Status::CANCELLED;
    }
    if (!ready_ && !ending_) {
      turn_taken_ = false;
      return;
    }
  }
  grpc::Status status;
  {
    absl::MutexLock lock(&mutex_);
    status = end_status_;  // the turn stays taken: nothing is written after this
  }
  Finish(status);
}

void WorkerStream::OnDone() {
  std::shared_ptr<Outbox> outbox;
  {
    absl::MutexLock lock(&mutex_);
    outbox = outbox_;
  }
  if (outbox) {
    outbox->on_ready(nullptr);
    if (!worker_id_.empty()) state_.disconnect_worker(worker_id_, outbox.get());
    outbox->close();
  }
  session_.reset();  // before the context goes
  self_.reset();     // may delete this
}

}  // namespace pesc
