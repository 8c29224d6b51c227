// One rank of the Gaussian example, as a native process: generates this
// rank's contiguous slice of COUNT normal numbers, writes them as raw doubles
// to output_dir/normals.bin and prints a one-line summary.
//
//   gaussian [--rank R --world_size W --output_dir O ...] --parameters COUNT [SEED]
//
// It reads the flags every PESC rank receives (see gaussian.py for the same
// thing through argparse) by hand, so it needs nothing but the standard
// library; run outside a farm it is rank 0 of 1 and writes to ./output.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gaussian.h"
#include "rank_arguments.h"

namespace {

namespace fs = std::filesystem;

using rank_arguments::parse_number;
using rank_arguments::RankArguments;

int usage(const std::string& message) {
  std::fprintf(stderr,
               "gaussian: %s\n"
               "usage: gaussian [--rank R --world_size W --output_dir O] --parameters COUNT [SEED]\n",
               message.c_str());
  return 2;  // argparse's exit code for a usage error
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  std::optional<RankArguments> arguments = rank_arguments::parse_arguments(argc, argv, &error);
  if (!arguments) return usage(error);
  std::optional<int> rank = parse_number<int>(arguments->rank);
  std::optional<int> world_size = parse_number<int>(arguments->world_size);
  if (!rank || !world_size || *world_size < 1 || *rank < 0 || *rank >= *world_size) {
    return usage("bad --rank " + arguments->rank + " / --world_size " + arguments->world_size);
  }
  const std::vector<std::string>& parameters = arguments->parameters;
  if (parameters.empty() || parameters.size() > 2) return usage("parameters are COUNT [SEED]");
  std::optional<uint64_t> count = parse_number<uint64_t>(parameters[0]);
  std::optional<uint64_t> seed = parameters.size() > 1 ? parse_number<uint64_t>(parameters[1]) : gaussian::kDefaultSeed;
  if (!count || !seed) return usage("COUNT and SEED must be non-negative integers");

  const auto started = std::chrono::steady_clock::now();
  const gaussian::Slice slice = gaussian::slice_for(*count, *rank, *world_size);
  fs::create_directories(arguments->output_dir);
  const fs::path path = fs::path(arguments->output_dir) / "normals.bin";
  std::ofstream out(path, std::ios::binary);
  // Chunks keep memory flat however large the slice; each chunk's jump costs
  // O(log n), nothing next to the chunk itself.
  constexpr uint64_t kChunk = uint64_t{1} << 16;
  std::vector<double> chunk(kChunk);
  gaussian::Moments moments;
  for (uint64_t begin = slice.begin; begin < slice.end && out; begin += kChunk) {
    const uint64_t end = std::min(slice.end, begin + kChunk);
    gaussian::generate(*seed, begin, end, chunk.data());
    for (uint64_t i = 0; i < end - begin; ++i) moments.add(chunk[i]);
    out.write(reinterpret_cast<const char*>(chunk.data()),
              static_cast<std::streamsize>((end - begin) * sizeof(double)));
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "gaussian: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("rank=%d world_size=%d begin=%llu count=%llu mean=%.9f variance=%.9f seconds=%.3f\n", *rank,
              *world_size, static_cast<unsigned long long>(slice.begin),
              static_cast<unsigned long long>(moments.count()), moments.mean(), moments.variance(), seconds);
  return 0;
}
