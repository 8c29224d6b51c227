// The domain command template (libpesc/executor/domain.cc): any text either
// is refused with a status or becomes an argv whose program is known and in
// which the entry path appears intact, never split or interpreted.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "executor/domain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto domain = pesc::parse_domain(text);
  if (!domain.ok()) return 0;
  if (domain->words.empty() || domain->words[0].empty()) std::abort();
  // The program resolves through an override, so no PATH search runs.
  pesc::InterpreterTable table({{domain->words[0], "/bin/true"}});
  const std::string entry = "/app dir/x y;$(rm -rf /)'\"";
  auto command = table.command_for(*domain, entry);
  if (!command.ok()) return 0;
  if (command->empty()) std::abort();
  bool entry_intact = false;
  for (const std::string& word : *command) entry_intact = entry_intact || word.find(entry) != std::string::npos;
  if (!entry_intact) std::abort();
  return 0;
}
