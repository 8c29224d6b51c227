#ifndef PESC_COMMON_CLOCK_H_
#define PESC_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace pesc {

inline int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Unix milliseconds as a time point and back, as the protocol carries times.
inline std::chrono::system_clock::time_point from_unix_ms(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}
inline int64_t unix_ms_of(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// Lowercase hex of `bytes` random bytes from the OS.
std::string random_hex(int bytes);

}  // namespace pesc

#endif  // PESC_COMMON_CLOCK_H_
