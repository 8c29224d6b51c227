#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace pesc::cli {

std::string format_duration(std::chrono::milliseconds duration) {
  const int64_t seconds = duration.count() / 1000;
  if (seconds < 60) return absl::StrFormat("%.1fs", static_cast<double>(duration.count()) / 1000.0);
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  return absl::StrFormat("%dh%02dm", seconds / 3600, (seconds % 3600) / 60);
}

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1), started_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::update(const Progress& progress) {
  if (!enabled_ || progress.total == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (shown_ && now - last_draw_ < std::chrono::milliseconds(100) && progress.finished() < progress.total) return;
  last_draw_ = now;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_);
  std::string eta = "?";
  if (progress.finished() > 0) {
    eta = format_duration(elapsed * (progress.total - progress.finished()) / progress.finished());
  }
  std::fprintf(stderr, "\r\033[Kpesc: %d/%d done, %d running, %d queued at workers, %d failed, %s elapsed, ETA %s",
               progress.finished(), progress.total, progress.running, progress.queued_at_workers, progress.failed,
               format_duration(elapsed).c_str(), eta.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::clear() {
  if (!shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace pesc::cli
