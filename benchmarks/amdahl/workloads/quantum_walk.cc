// A lackadaisical quantum walk searching an n-dimensional hypercube for one
// marked vertex (Wong 2015; Rhodes and Wong 2019), swept over the weight l of
// the self-loop each vertex gets. The PESC paper ran 1200 such simulations as
// ranks; this program farms out its own: the same binary is the driver and
// every rank.
//
//   quantum_walk [--slots S] [--dims N] [--steps T] [--weights K] [--svg FILE]
//       driver: K ranks on an embedded farm of S slots, rank r simulating the
//       weights r, r + W, ... of K weights l = (4 k / (K - 1)) n / 2^n, then the
//       best weight and the job's report (and timeline with --svg)
//   quantum_walk --rank R --world_size W --output_dir O --parameters N T K
//       one rank, as the farm calls it (the PESC flags); also what GNU
//       parallel runs, and rank 0 of 1 is the sequential run
//
// The walk: amplitudes psi[v][c] over vertices v (N = 2^n) and coin states c
// (the n edge directions and the self-loop). One step is
//   query:  psi[w][c] = -psi[w][c] at the marked vertex w,
//   coin:   C = 2|s><s| - I at every vertex, |s> = (sum_i |i> + sqrt(l)|loop>) / sqrt(n + l),
//   shift:  flip-flop, |v, i> -> |v xor 2^i, i>; the loop stays.
// It starts in |s> at every vertex, uniformly. Everything is real, so doubles
// suffice. A rank prints the best success probability over T steps and when
// it was reached, and leaves the whole curve in output_dir/probability.csv.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "pesc/pesc.h"
#include "rank_arguments.h"

namespace {

namespace fs = std::filesystem;
using rank_arguments::parse_number;

constexpr int kMarked = 0;  // the hypercube is symmetric: which vertex is marked does not matter

struct Walk {
  int dims;
  int steps;
};

// The weight of sweep point k of `count`: from 0 to 4 n / N, whose middle,
// l = n / N, is the weight known to make the search near certain.
double weight_of(int k, int count, int dims) {
  const double vertices = std::ldexp(1.0, dims);
  return count < 2 ? dims / vertices : 4.0 * k / (count - 1) * dims / vertices;
}

// Success probability after each step 0..steps for self-loop weight `weight`.
std::vector<double> success_curve(const Walk& walk, double weight) {
  const size_t vertices = size_t{1} << walk.dims;
  const size_t coins = static_cast<size_t>(walk.dims) + 1;  // directions, then the loop
  std::vector<double> s(coins, 1.0);
  s.back() = std::sqrt(weight);
  const double norm = std::sqrt(walk.dims + weight);
  for (double& x : s) x /= norm;

  std::vector<double> psi(vertices * coins), next(vertices * coins);
  const double amplitude = 1.0 / std::sqrt(static_cast<double>(vertices));
  for (size_t v = 0; v < vertices; ++v) {
    for (size_t c = 0; c < coins; ++c) psi[v * coins + c] = amplitude * s[c];
  }
  auto probability = [&] {
    double p = 0;
    for (size_t c = 0; c < coins; ++c) p += psi[kMarked * coins + c] * psi[kMarked * coins + c];
    return p;
  };
  std::vector<double> curve{probability()};
  for (int t = 0; t < walk.steps; ++t) {
    for (size_t c = 0; c < coins; ++c) psi[kMarked * coins + c] = -psi[kMarked * coins + c];
    for (size_t v = 0; v < vertices; ++v) {
      const double* in = &psi[v * coins];
      double overlap = 0;
      for (size_t c = 0; c < coins; ++c) overlap += s[c] * in[c];
      // Coin, then the flip-flop shift into the neighbour's same direction.
      for (size_t c = 0; c + 1 < coins; ++c) next[(v ^ (size_t{1} << c)) * coins + c] = 2 * overlap * s[c] - in[c];
      next[v * coins + coins - 1] = 2 * overlap * s[coins - 1] - in[coins - 1];
    }
    psi.swap(next);
    curve.push_back(probability());
  }
  return curve;
}

int usage(const char* message) {
  std::fprintf(stderr,
               "quantum_walk: %s\nusage: quantum_walk [--slots S] [--dims N] [--steps T] [--weights K] [--svg FILE]\n"
               "       quantum_walk --rank R --world_size W --output_dir O --parameters N T K\n",
               message);
  return 2;
}

// One rank: the sweep points rank, rank + world_size, ... of `count`.
int run_rank(int argc, char** argv) {
  std::string error;
  auto arguments = rank_arguments::parse_arguments(argc, argv, &error);
  if (!arguments) return usage(error.c_str());
  const auto rank = parse_number<int>(arguments->rank), world = parse_number<int>(arguments->world_size);
  if (!rank || !world || *world < 1 || *rank < 0 || *rank >= *world || arguments->parameters.size() != 3) {
    return usage("a rank needs --rank R --world_size W and --parameters DIMS STEPS WEIGHTS");
  }
  const auto dims = parse_number<int>(arguments->parameters[0]), steps = parse_number<int>(arguments->parameters[1]),
             count = parse_number<int>(arguments->parameters[2]);
  if (!dims || !steps || !count || *dims < 1 || *dims > 26 || *steps < 1 || *count < 1) {
    return usage("DIMS must be 1..26, STEPS and WEIGHTS at least 1");
  }
  fs::create_directories(arguments->output_dir);
  std::ofstream csv(fs::path(arguments->output_dir) / "probability.csv");
  csv << "weight,step,probability\n";
  for (int k = *rank; k < *count; k += *world) {
    const double weight = weight_of(k, *count, *dims);
    const std::vector<double> curve = success_curve({*dims, *steps}, weight);
    size_t best = 0;
    for (size_t t = 0; t < curve.size(); ++t) {
      csv << weight << "," << t << "," << curve[t] << "\n";
      if (curve[t] > curve[best]) best = t;
    }
    std::printf("point=%d weight=%.6g weight_times_N_over_n=%.3f best_probability=%.4f at_step=%zu\n", k, weight,
                weight * std::ldexp(1.0, *dims) / *dims, curve[best], best);
  }
  return 0;
}

int run_driver(int argc, char** argv) {
  int slots = 0, dims = 12, steps = 400, count = 16;
  std::string svg_file;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--svg") {
      svg_file = value;
      continue;
    }
    auto number = parse_number<int>(value);
    if (!number) return usage(("not a number: " + value).c_str());
    if (flag == "--slots") slots = *number;
    else if (flag == "--dims") dims = *number;
    else if (flag == "--steps") steps = *number;
    else if (flag == "--weights") count = *number;
    else return usage(("unknown flag " + flag).c_str());
  }
  const fs::path self = fs::read_symlink("/proc/self/exe");
  pesc::Farm farm("native", {.slots = slots});
  const auto started = std::chrono::steady_clock::now();
  // One rank per weight: each rank is this same program, called with the PESC flags.
  pesc::Results results =
      farm.map(self, count, {std::to_string(dims), std::to_string(steps), std::to_string(count)}).wait();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << results.output();
  if (!results.ok()) {
    std::cerr << "quantum_walk: ranks failed: " << results.failed_ranks().size() << "\n";
    return 1;
  }
  std::printf("%d weights on a %d-cube in %.3f s on %s\n\n", count, dims, wall, farm.describe().c_str());
  const pesc::JobReport report = results.report();
  std::cout << report.to_text();
  if (!svg_file.empty()) std::ofstream(svg_file) << report.timeline_svg();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The farm calls every rank with the PESC flags and PESC_RANK set.
  const bool is_rank = std::getenv("PESC_RANK") != nullptr || (argc > 1 && std::string(argv[1]).starts_with("--rank"));
  try {
    return is_rank ? run_rank(argc, argv) : run_driver(argc, argv);
  } catch (const pesc::Error& error) {
    std::cerr << "quantum_walk: " << error.what() << "\n";
    return 1;
  }
}
