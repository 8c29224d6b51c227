#include "security/input_limits.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "executor/domain.h"
#include "executor/rank_contract.h"

namespace pesc {
namespace {

absl::Status too_long(std::string_view what, size_t size, size_t limit) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(what), " has ", size, " bytes; at most ", limit, " are accepted"));
}

absl::Status check_length(std::string_view what, std::string_view text, size_t limit) {
  return text.size() > limit ? too_long(what, text.size(), limit) : absl::OkStatus();
}

absl::Status check_label(std::string_view what, std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(std::string(what), " is empty"));
  return check_length(what, text, kMaxLabelBytes);
}

absl::Status check_rooms(const google::protobuf::RepeatedPtrField<std::string>& rooms) {
  if (rooms.size() > kMaxRooms) {
    return absl::InvalidArgumentError(absl::StrCat(rooms.size(), " rooms named; at most ", kMaxRooms, " are accepted"));
  }
  for (const std::string& room : rooms) {
    if (room.empty() || room.size() > 64) return absl::InvalidArgumentError("a room name must have 1 to 64 characters");
  }
  return absl::OkStatus();
}

// A shared file lands in every rank's app_dir under this name, so it must
// stay one plain name there.
absl::Status check_shared_name(std::string_view name) {
  if (absl::Status status = check_label("a shared file's name", name); !status.ok()) return status;
  if (name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("a shared file's name must be a plain file name, not \"", std::string(name.substr(0, 80)), "\""));
  }
  return absl::OkStatus();
}

// What a job needs to run at all: a domain, a process, an entry point,
// parameters that fit the rank contract, and GPUs it may ask for.
absl::Status check_job_runs(const v1::JobSpec& spec) {
  if (auto domain = parse_domain(spec.domain()); !domain.ok()) return domain.status();
  if (spec.process().sha256().empty() || spec.process_kind() == v1::PROCESS_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError("the job names no process: upload one and give its blob and kind");
  }
  if (spec.entry().empty()) return absl::InvalidArgumentError("the job names no entry point");
  PESC_RETURN_IF_ERROR(check_parameters_fit({spec.parameters().begin(), spec.parameters().end()}));
  if (spec.gpus_per_rank() < 0 || spec.gpus_per_rank() > kMaxGpusPerRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPUs per rank must be between 0 and ", kMaxGpusPerRank, ", not ", spec.gpus_per_rank()));
  }
  if (!(spec.min_capability() >= 0) || (spec.min_capability() > 0 && spec.gpus_per_rank() == 0)) {
    return absl::InvalidArgumentError("a minimum compute capability needs GPUs per rank (--gpus N)");
  }
  if (spec.parallel() && spec.gpus_per_rank() > 0) {
    return absl::UnimplementedError(
        "a parallel job cannot ask for GPUs yet (gangs are placed by slots only); drop --gpus or --parallel");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status check_blob_id(std::string_view sha256) {
  bool hex = sha256.size() == 64;
  for (char c : sha256) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (hex) return absl::OkStatus();
  return absl::InvalidArgumentError("a blob id is the SHA-256 of its bytes: 64 lowercase hex digits");
}

absl::Status check_job_id(std::string_view job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("no job id given");
  return check_length("the job id", job_id, kMaxIdBytes);
}

namespace {

// Each target is mailto:ADDR or an http(s) URL; a few at most.
absl::Status check_notify_targets(const v1::JobSpec& spec, bool can_send_mail) {
  if (spec.notify_size() > kMaxNotifyTargets) {
    return absl::InvalidArgumentError(absl::StrCat(spec.notify_size(), " notify targets given; at most ",
                                                   kMaxNotifyTargets, " are accepted"));
  }
  for (const std::string& target : spec.notify()) {
    if (absl::Status status = check_length("a notify target", target, kMaxCommandBytes); !status.ok()) return status;
    if (target.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError("a notify target contains a line break or NUL byte");
    }
    if (absl::StartsWithIgnoreCase(target, "mailto:")) {
      const std::string_view address = std::string_view(target).substr(7);
      const size_t at = address.find('@');
      if (at == std::string_view::npos || at == 0 || at + 1 == address.size() ||
          address.find_first_of(" <>,;") != std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("notify target '", target, "' is not mailto:user@host (one address per target)"));
      }
      if (!can_send_mail) {
        return absl::FailedPreconditionError(absl::StrCat(
            "notify target '", target, "' needs e-mail, and this coordinator sends none: its operator starts it "
            "with --smtp-url smtp://HOST:PORT (and --smtp-from ADDR); or notify an https:// URL instead"));
      }
      continue;
    }
    if ((absl::StartsWithIgnoreCase(target, "https://") && target.size() > 8) ||
        (absl::StartsWithIgnoreCase(target, "http://") && target.size() > 7)) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "notify target '", target, "' is neither mailto:ADDR nor an http:// or https:// URL"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status check_job_spec(const v1::JobSpec& spec, bool can_send_mail) {
  if (absl::Status status = check_notify_targets(spec, can_send_mail); !status.ok()) return status;
  if (spec.repetitions() < 1 || spec.repetitions() > kMaxRepetitionsPerJob) {
    return absl::InvalidArgumentError(absl::StrCat("repetitions must be between 1 and ", kMaxRepetitionsPerJob,
                                                   ", not ", spec.repetitions()));
  }
  if (spec.parameters_size() > kMaxParameters) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.parameters_size(), " parameters given; at most ", kMaxParameters, " are accepted"));
  }
  size_t all_parameters = 0;
  for (int i = 0; i < spec.parameters_size(); ++i) {
    const std::string& parameter = spec.parameters(i);
    if (parameter.size() > kMaxParameterBytes) {
      return too_long(absl::StrCat("parameter ", i + 1), parameter.size(), kMaxParameterBytes);
    }
    if (parameter.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter ", i + 1, " contains a NUL byte, which no process can receive in its arguments: "
          "pass binary data as a shared file (--shared)"));
    }
    all_parameters += parameter.size();
  }
  if (all_parameters > kMaxAllParametersBytes) {
    return too_long("the parameters together", all_parameters, kMaxAllParametersBytes);
  }
  if (absl::Status status = check_length("the domain", spec.domain(), kMaxCommandBytes); !status.ok()) return status;
  if (absl::Status status = check_length("the entry point", spec.entry(), kMaxCommandBytes); !status.ok()) {
    return status;
  }
  if (spec.entry().find('\0') != std::string::npos || spec.domain().find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the entry point or domain contains a NUL byte");
  }
  if (absl::Status status = check_length("the job's name", spec.name(), kMaxLabelBytes); !status.ok()) return status;
  if (absl::Status status = check_length("the user name", spec.user(), 64); !status.ok()) return status;
  if (!spec.process().sha256().empty()) {
    if (absl::Status status = check_blob_id(spec.process().sha256()); !status.ok()) return status;
  }
  if (spec.max_attempts() < 0 || spec.timeout_ms() < 0 || spec.checkpoint_interval_ms() < 0) {
    return absl::InvalidArgumentError("max_attempts, timeout and checkpoint interval cannot be negative");
  }
  if (absl::Status status = check_rooms(spec.rooms()); !status.ok()) return status;
  if (spec.shared_size() > kMaxSharedFiles) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.shared_size(), " shared files given; at most ", kMaxSharedFiles, " are accepted"));
  }
  for (const v1::SharedFile& shared : spec.shared()) {
    if (absl::Status status = check_shared_name(shared.name()); !status.ok()) return status;
    if (shared.has_blob()) {
      if (absl::Status status = check_blob_id(shared.blob().sha256()); !status.ok()) return status;
    } else if (absl::Status status = check_length("a shared file's URL", shared.url(), kMaxCommandBytes);
               !status.ok()) {
      return status;
    }
  }
  return check_job_runs(spec);
}

absl::Status check_registration(const v1::RegisterWorker& registration) {
  if (registration.worker_id().empty()) return absl::InvalidArgumentError("a worker must give its id");
  if (absl::Status status = check_length("the worker id", registration.worker_id(), kMaxIdBytes); !status.ok()) {
    return status;
  }
  if (absl::Status status = check_length("the host name", registration.host(), kMaxLabelBytes); !status.ok()) {
    return status;
  }
  if (registration.slots() < 1 || registration.slots() > kMaxSlots) {
    return absl::InvalidArgumentError(
        absl::StrCat("a worker needs 1 to ", kMaxSlots, " slots, not ", registration.slots()));
  }
  if (registration.attempts_in_hand_size() > kMaxAttemptsInHand) {
    return absl::InvalidArgumentError(absl::StrCat("a worker may hold at most ", kMaxAttemptsInHand, " attempts"));
  }
  if (registration.held_gpus_size() > kMaxAttemptsInHand) {
    return absl::InvalidArgumentError(absl::StrCat("a worker may hold at most ", kMaxAttemptsInHand, " attempts"));
  }
  if (registration.gpus_size() > kMaxGpusPerWorker) {
    return absl::InvalidArgumentError(absl::StrCat("a worker may report at most ", kMaxGpusPerWorker, " GPUs"));
  }
  if (absl::Status status = check_length("the pause reason", registration.paused_reason(), kMaxCommandBytes);
      !status.ok()) {
    return status;
  }
  if (registration.unavailable_domains_size() > kMaxUnavailableDomains) {
    return absl::InvalidArgumentError(
        absl::StrCat("a worker may name at most ", kMaxUnavailableDomains, " domains it cannot run"));
  }
  for (const v1::UnavailableDomain& domain : registration.unavailable_domains()) {
    if (absl::Status status = check_length("a domain", domain.domain(), kMaxCommandBytes); !status.ok()) return status;
    if (absl::Status status = check_length("why a domain cannot run", domain.why(), kMaxCommandBytes); !status.ok()) {
      return status;
    }
  }
  return check_rooms(registration.rooms());
}

}  // namespace pesc
