// Archive extraction (libpesc/archive) on arbitrary bytes: it must never
// crash, and nothing may land outside the destination, whatever the entries
// say (absolute paths, "..", links that point out).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "archive/archive.h"

namespace fs = std::filesystem;

namespace {

// One scratch directory per process: the archive, the destination, and a
// sentinel sibling that must stay empty.
const fs::path& scratch() {
  static const fs::path root = [] {
    std::string pattern = (fs::temp_directory_path() / "pesc-archive-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return fs::path(pattern);
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path root = scratch();
  const fs::path input = root / "input.tar";
  const fs::path destination = root / "jail" / "dest";
  {
    std::ofstream(input, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                   static_cast<std::streamsize>(size));
  }
  std::error_code ignored;
  fs::remove_all(root / "jail", ignored);
  fs::create_directories(destination);

  (void)pesc::archive::list_files(input);
  (void)pesc::archive::extract(input, destination);
  (void)pesc::archive::read_member(std::string(reinterpret_cast<const char*>(data), size), "main.py");

  // Whatever was extracted stays under dest: jail/ holds dest and nothing else.
  for (const fs::directory_entry& entry : fs::directory_iterator(root / "jail")) {
    if (entry.path().filename() != "dest") std::abort();
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name != "input.tar" && name != "jail") std::abort();
  }
  fs::remove_all(root / "jail", ignored);
  return 0;
}
