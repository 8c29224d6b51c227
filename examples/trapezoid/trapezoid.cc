// One rank of the trapezoid example, as a native process: the composite
// trapezoid rule for the integral of sin(x)^2 over [-1, 1] with N intervals,
// of which rank r of W sums its contiguous share. It prints one line,
//
//   partial rank=R world_size=W intervals=LO..HI sum=S
//
// and the sums of all ranks add up to the whole rule (README.md shows how).
//
//   trapezoid [--rank R --world_size W ...] --parameters N
//
// The flags are the PESC rank contract (rank_arguments.h); only --rank,
// --world_size and --parameters matter here.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "rank_arguments.h"

namespace {

using rank_arguments::parse_number;

constexpr double kLower = -1.0;
constexpr double kUpper = 1.0;

double integrand(double x) {
  const double s = std::sin(x);
  return s * s;
}

int usage(const char* message) {
  std::fprintf(stderr, "trapezoid: %s\nusage: trapezoid [--rank R --world_size W] --parameters N\n", message);
  return 2;
}

// Neumaier's compensated sum: with 10^9 terms a plain sum would lose more to
// rounding than the rule's own error.
class CompensatedSum {
 public:
  void add(double x) {
    const double t = sum_ + x;
    compensation_ += std::fabs(sum_) >= std::fabs(x) ? (sum_ - t) + x : (x - t) + sum_;
    sum_ = t;
  }
  double value() const { return sum_ + compensation_; }

 private:
  double sum_ = 0.0;
  double compensation_ = 0.0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  const auto arguments = rank_arguments::parse_arguments(argc, argv, &error);
  if (!arguments) return usage(error.c_str());
  if (arguments->parameters.size() != 1) return usage("the one parameter is N");
  const std::string& rank_text = arguments->rank;
  const std::string& world_text = arguments->world_size;
  const std::string& intervals_text = arguments->parameters[0];
  const auto rank = parse_number<int64_t>(rank_text);
  const auto world_size = parse_number<int64_t>(world_text);
  const auto intervals = parse_number<int64_t>(intervals_text);
  if (!rank || !world_size || *world_size < 1 || *rank < 0 || *rank >= *world_size) return usage("bad rank");
  if (!intervals || *intervals < 1) return usage("N must be a positive number of intervals");

  // This rank's intervals [lo, hi): the first N % W ranks take one more.
  const int64_t share = *intervals / *world_size, extra = *intervals % *world_size;
  const int64_t lo = share * *rank + std::min(*rank, extra);
  const int64_t hi = share * (*rank + 1) + std::min(*rank + 1, extra);
  const double h = (kUpper - kLower) / static_cast<double>(*intervals);
  // x_i from i, not by adding h repeatedly, so no error accumulates along
  // the slice and every rank agrees on the shared end points.
  auto x = [&](int64_t i) { return kLower + static_cast<double>(i) * h; };
  // Interval i contributes h (f(x_i) + f(x_i+1)) / 2: inner points weigh h,
  // the slice's two ends h / 2 (a shared end is counted half by each side).
  CompensatedSum sum;
  if (lo < hi) {
    sum.add(0.5 * integrand(x(lo)));
    for (int64_t i = lo + 1; i < hi; ++i) sum.add(integrand(x(i)));
    sum.add(0.5 * integrand(x(hi)));
  }
  // The shortest text that reads back as the same double, as Python's repr.
  char sum_text[32];
  *std::to_chars(sum_text, sum_text + sizeof sum_text - 1, h * sum.value()).ptr = '\0';
  std::printf("partial rank=%lld world_size=%lld intervals=%lld..%lld sum=%s\n", static_cast<long long>(*rank),
              static_cast<long long>(*world_size), static_cast<long long>(lo), static_cast<long long>(hi), sum_text);
  return 0;
}
