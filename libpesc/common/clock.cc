#include "common/clock.h"

#include <sys/random.h>

#include <cstdio>
#include <vector>

namespace pesc {

std::string random_hex(int bytes) {
  std::vector<unsigned char> buffer(static_cast<size_t>(bytes));
  size_t filled = 0;
  while (filled < buffer.size()) {
    ssize_t got = ::getrandom(buffer.data() + filled, buffer.size() - filled, 0);
    if (got > 0) filled += static_cast<size_t>(got);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(buffer.size() * 2);
  for (unsigned char byte : buffer) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

}  // namespace pesc
