// The runner protocol's answer line (libpesc/executor/warm_runner.cc): a
// runner is the user's code, so any bytes may come back; they are either a
// status (and perhaps a plain file name) or refused, and a refusal quotes
// them printably.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "executor/warm_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto answer = pesc::parse_runner_answer(line);
  if (answer.ok()) {
    if (line.rfind("done\t", 0) != 0) std::abort();
    // A handed-over file must stay a plain name in output_dir, and small.
    const std::string& name = answer->file_name;
    if (name.find('/') != std::string::npos || name == ".." || name == "." || name == "output.txt") std::abort();
    if (answer->file_size > pesc::kMaxPipedFileBytes) std::abort();
    return 0;
  }
  for (char c : answer.status().message()) {
    if (static_cast<unsigned char>(c) < 0x20) std::abort();
  }
  return 0;
}
