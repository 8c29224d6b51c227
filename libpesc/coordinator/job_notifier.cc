#include "coordinator/job_notifier.h"

#include <algorithm>
#include <iostream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "transport/notice_delivery.h"

namespace pesc {
namespace {

std::string outcome_of(JobState state) {
  switch (state) {
    case JobState::kFinished: return "finished";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
    default: return "running";
  }
}

// A JSON string literal: quotes, backslashes and control characters escaped.
std::string json_string(std::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': quoted += "\\\""; break;
      case '\\': quoted += "\\\\"; break;
      case '\n': quoted += "\\n"; break;
      case '\r': quoted += "\\r"; break;
      case '\t': quoted += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          quoted += absl::StrFormat("\\u%04x", static_cast<int>(c));
        } else {
          quoted += c;
        }
    }
  }
  return quoted + "\"";
}

// A header's value on one line: what a job's name or failure holds never
// starts a header of its own.
std::string one_line(std::string_view text) {
  std::string line(text);
  std::replace_if(line.begin(), line.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return line;
}

std::string seconds(int64_t ms) { return absl::StrFormat("%.1f s", static_cast<double>(ms) / 1000.0); }

}  // namespace

JobOutcome JobOutcome::of(const JobRecord& job, int64_t rank_time_ms) {
  JobOutcome outcome{.job_id = job.id,
                     .name = job.spec.options.name,
                     .user = job.spec.user,
                     .outcome = outcome_of(job.state),
                     .failure = job.failure,
                     .ranks = job.progress.total,
                     .succeeded = job.progress.succeeded,
                     .failed = job.progress.failed,
                     .cancelled = job.progress.cancelled,
                     .rank_time_ms = rank_time_ms};
  if (job.finished_unix_ms > 0) outcome.wall_ms = std::max<int64_t>(0, job.finished_unix_ms - job.created_unix_ms);
  if (outcome.wall_ms > 0) {
    outcome.speedup = static_cast<double>(outcome.rank_time_ms) / static_cast<double>(outcome.wall_ms);
  }
  return outcome;
}

std::string JobOutcome::to_json() const {
  return absl::StrCat("{\"job_id\":", json_string(job_id), ",\"name\":", json_string(name), ",\"user\":",
                      json_string(user), ",\"outcome\":", json_string(outcome), ",\"failure\":",
                      json_string(failure), ",\"ranks\":", ranks, ",\"succeeded\":", succeeded, ",\"failed\":",
                      failed, ",\"cancelled\":", cancelled, ",\"wall_ms\":", wall_ms, ",\"rank_time_ms\":",
                      rank_time_ms, ",\"speedup\":", absl::StrFormat("%.3f", speedup), "}");
}

std::string JobOutcome::to_mail(const std::string& from, const std::string& to) const {
  const std::string label = name.empty() ? job_id : absl::StrCat(one_line(name), " (", job_id, ")");
  std::string body = absl::StrCat("Job ", label, " ", outcome, ".\r\n\r\n", "Ranks: ", ranks, " (", succeeded,
                                  " succeeded, ", failed, " failed, ", cancelled, " cancelled)\r\n",
                                  "Wall time: ", seconds(wall_ms), "\r\n", "Rank time: ", seconds(rank_time_ms),
                                  "\r\n", absl::StrFormat("Speedup: %.2f\r\n", speedup));
  if (!failure.empty()) absl::StrAppend(&body, "Why it failed: ", one_line(failure), "\r\n");
  return absl::StrCat("From: ", from, "\r\nTo: ", to, "\r\nSubject: pesc job ", label, " ", outcome,
                      "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", body);
}

JobNotifier::JobNotifier(NotifierSettings settings, ReadJob read_job)
    : settings_(std::move(settings)), read_job_(std::move(read_job)), thread_([this] { run(); }) {}

JobNotifier::~JobNotifier() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  abandon_ = true;
  thread_.join();
  std::deque<std::string> unread;
  {
    absl::MutexLock lock(&mutex_);
    unread.swap(ended_);
  }
  for (const std::string& job_id : unread) {
    std::cerr << "pesc coordinator: the notices of job " << job_id << " were not sent: the coordinator stopped"
              << std::endl;
  }
  for (const Delivery& delivery : deliveries_) {
    std::cerr << "pesc coordinator: the notice of job " << delivery.job_id << " to " << delivery.target
              << " was not sent: the coordinator stopped" << std::endl;
  }
}

void JobNotifier::job_ended(const std::string& job_id) {
  absl::MutexLock lock(&mutex_);
  ended_.push_back(job_id);
}

void JobNotifier::run() {
  while (true) {
    std::deque<std::string> ended;
    {
      absl::Time wake = absl::InfiniteFuture();
      for (const Delivery& delivery : deliveries_) wake = std::min(wake, delivery.due);
      absl::MutexLock lock(&mutex_);
      mutex_.AwaitWithDeadline(absl::Condition(this, &JobNotifier::has_news), wake);
      if (stopping_) return;
      ended.swap(ended_);
    }
    for (const std::string& job_id : ended) prepare(job_id);
    send_due();
  }
}

void JobNotifier::prepare(const std::string& job_id) {
  absl::StatusOr<EndedJob> job = read_job_(job_id);
  if (!job.ok()) {
    std::cerr << "pesc coordinator: the notices of job " << job_id
              << " were not sent: reading the job failed: " << job.status().message() << std::endl;
    return;
  }
  const std::vector<std::string>& targets = job->job.spec.options.notify;
  if (targets.empty()) return;
  const JobOutcome outcome = JobOutcome::of(job->job, job->rank_time_ms);
  for (const std::string& target : targets) {
    deliveries_.push_back(Delivery{.job_id = job_id, .target = target, .outcome = outcome, .due = absl::Now()});
  }
}

absl::Status JobNotifier::deliver(const Delivery& delivery) {
  const DeliveryLimits limits{.abandon = &abandon_};
  if (absl::StartsWithIgnoreCase(delivery.target, "mailto:")) {
    if (settings_.smtp_url.empty()) {
      return absl::FailedPreconditionError("the coordinator has no --smtp-url (it was restarted without one)");
    }
    const std::string to = delivery.target.substr(7);
    return send_mail(settings_.smtp_url, settings_.smtp_from, to, delivery.outcome.to_mail(settings_.smtp_from, to),
                     limits);
  }
  return post_json(delivery.target, delivery.outcome.to_json(), limits);
}

void JobNotifier::send_due() {
  for (auto delivery = deliveries_.begin(); delivery != deliveries_.end() && !abandon_;) {
    if (delivery->due > absl::Now()) {
      ++delivery;
      continue;
    }
    absl::Status sent = deliver(*delivery);
    if (sent.ok() || abandon_) {
      delivery = sent.ok() ? deliveries_.erase(delivery) : std::next(delivery);
      continue;
    }
    ++delivery->attempts_made;
    std::cerr << "pesc coordinator: the notice of job " << delivery->job_id << " to " << delivery->target;
    const bool retryable = !absl::IsFailedPrecondition(sent);
    if (!retryable || delivery->attempts_made >= settings_.attempts) {
      std::cerr << " was not sent (gave up after " << delivery->attempts_made << " tries): " << sent.message()
                << std::endl;
      delivery = deliveries_.erase(delivery);
      continue;
    }
    const absl::Duration pause = settings_.first_retry * (int64_t{1} << (delivery->attempts_made - 1));
    std::cerr << " failed, will retry in " << absl::FormatDuration(pause) << ": " << sent.message() << std::endl;
    delivery->due = absl::Now() + pause;
    ++delivery;
  }
}

}  // namespace pesc
