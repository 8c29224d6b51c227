#ifndef PESC_DAEMONS_PESC_PROGRESS_H_
#define PESC_DAEMONS_PESC_PROGRESS_H_

#include <chrono>
#include <string>

#include "pesc/pesc.h"

namespace pesc::cli {

// One status line on stderr, redrawn in place, only when stderr is a
// terminal: nothing but the output goes to a pipe.
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  void update(const Progress& progress);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_{};
};

std::string format_duration(std::chrono::milliseconds duration);

}  // namespace pesc::cli

#endif  // PESC_DAEMONS_PESC_PROGRESS_H_
