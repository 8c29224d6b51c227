// The runner protocol's answer line (libpesc/executor/warm_runner.cc): a
// runner is the user's code, so any bytes may come back; they are either a
// status or refused, and a refusal quotes them printably.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "executor/warm_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto status = pesc::parse_runner_answer(line);
  if (status.ok()) {
    if (line.rfind("done\t", 0) != 0) std::abort();
    return 0;
  }
  for (char c : status.status().message()) {
    if (static_cast<unsigned char>(c) < 0x20) std::abort();
  }
  return 0;
}
