// Drives the Gaussian example from C++ through libpesc: runs the `gaussian`
// rank binary as RANKS ranks on an embedded local farm, collects every rank's
// normals.bin, checks that together they are exactly the sequence one rank
// would produce, and reports wall times and the overall mean and variance.
//
//   gaussian_driver RANKS COUNT [SEED] [GAUSSIAN_BINARY]
//
// GAUSSIAN_BINARY defaults to the `gaussian` built beside this driver.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "gaussian.h"
#include "pesc/pesc.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A fresh directory for the ranks' files, removed when it goes out of scope.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (fs::temp_directory_path() / "pesc-gaussian-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

int run(int ranks, uint64_t count, uint64_t seed, const fs::path& process) {
  pesc::Farm farm("native");
  std::cout << "farm: " << farm.describe() << "\n";

  const auto farm_start = Clock::now();
  pesc::Job job = farm.map(process, ranks, {std::to_string(count), std::to_string(seed)});
  pesc::Results results = job.wait();
  const double farm_seconds = seconds_since(farm_start);
  std::cout << results.output();
  if (!results.ok()) {
    for (int rank : results.failed_ranks()) {
      const pesc::RankResult& failed = results[static_cast<size_t>(rank)];
      std::cerr << "rank " << rank << " " << pesc::to_string(failed.status) << " (exit " << failed.exit_code
                << ") " << failed.error << "\n";
    }
    return 1;
  }

  TemporaryDirectory saved;
  results.save(saved.path());

  // Compare each rank's file, a chunk at a time so memory stays flat, with the
  // same stretch of the sequence generated here, where one rank would make it.
  // Bit for bit, not within a tolerance: the ranks must make the same doubles.
  constexpr uint64_t kChunk = uint64_t{1} << 20;
  std::vector<double> received(kChunk), expected(kChunk);
  gaussian::Moments moments;
  uint64_t position = 0;  // where the next rank's numbers belong in the sequence
  bool identical = true;
  double local_seconds = 0;
  for (const pesc::RankResult& rank : results) {
    const fs::path path = saved.path() / ("rank_" + std::to_string(rank.rank)) / "normals.bin";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("rank " + std::to_string(rank.rank) + " left no normals.bin");
    for (uint64_t left = fs::file_size(path) / sizeof(double); left > 0;) {
      const uint64_t n = std::min(left, kChunk);
      in.read(reinterpret_cast<char*>(received.data()), static_cast<std::streamsize>(n * sizeof(double)));
      if (!in) throw std::runtime_error("cannot read " + path.string());
      const auto local_start = Clock::now();
      gaussian::generate(seed, position, position + n, expected.data());
      local_seconds += seconds_since(local_start);
      identical = identical && std::memcmp(received.data(), expected.data(), n * sizeof(double)) == 0;
      for (uint64_t i = 0; i < n; ++i) moments.add(received[i]);
      position += n;
      left -= n;
    }
  }
  identical = identical && position == count;

  std::printf("%d rank%s: %.3f s wall (submit to last result); the same numbers generated in-process: %.3f s\n", ranks,
              ranks == 1 ? "" : "s", farm_seconds, local_seconds);
  std::printf("%llu normals, %s the 1-rank sequence\n", static_cast<unsigned long long>(position),
              identical ? "bit-identical to" : "DIFFERENT from");
  std::printf("overall mean=%.9f variance=%.9f\n", moments.mean(), moments.variance());
  return identical ? 0 : 1;
}

int usage() {
  std::cerr << "usage: gaussian_driver RANKS COUNT [SEED] [GAUSSIAN_BINARY]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) return usage();
  char* end = nullptr;
  const long ranks = std::strtol(argv[1], &end, 10);
  if (*end != '\0' || ranks < 1 || ranks > 100000) return usage();
  const unsigned long long count = std::strtoull(argv[2], &end, 10);
  if (*end != '\0' || argv[2][0] == '-') return usage();
  unsigned long long seed = gaussian::kDefaultSeed;
  if (argc > 3) {
    seed = std::strtoull(argv[3], &end, 10);
    if (*end != '\0' || argv[3][0] == '-') return usage();
  }
  // The rank binary is built next to this one.
  fs::path process = argc > 4 ? fs::path(argv[4]) : fs::read_symlink("/proc/self/exe").parent_path() / "gaussian";
  try {
    return run(static_cast<int>(ranks), count, seed, fs::absolute(process));
  } catch (const pesc::Error& error) {
    std::cerr << "gaussian_driver: " << error.what() << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "gaussian_driver: " << error.what() << "\n";
    return 1;
  }
}
