// The PESC paper's Gaussian generator: a linear congruential generator
// (m = 2^31, a = 1103515245, c = 12345) feeding the Box-Muller transform.
// Shared by the rank binary (gaussian.cc) and the driver (driver.cc), so the
// driver can recompute what the ranks should have produced. gaussian.py is
// the same algorithm, step for step, so its numbers match these bit for bit.
//
// The sequence is defined globally: with x_0 = seed, uniform j is u(x_{j+1})
// and normals 2k and 2k+1 are the Box-Muller pair made of uniforms 2k and
// 2k+1. Any slice [begin, end) can therefore be generated on its own after an
// O(log n) jump of the LCG, which is what lets N ranks reproduce a 1-rank run
// exactly.
#ifndef PESC_EXAMPLES_GAUSSIAN_GAUSSIAN_H_
#define PESC_EXAMPLES_GAUSSIAN_GAUSSIAN_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace gaussian {

constexpr uint64_t kModulusMask = (uint64_t{1} << 31) - 1;  // m = 2^31, so "mod m" is a mask
constexpr uint64_t kMultiplier = 1103515245;
constexpr uint64_t kIncrement = 12345;
constexpr uint64_t kDefaultSeed = 1;

// x' = (a x + c) mod 2^31. Every state is below 2^31, so a product of two
// fits in 62 bits and uint64_t arithmetic never overflows.
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed & kModulusMask) {}

  uint64_t next() {
    state_ = (kMultiplier * state_ + kIncrement) & kModulusMask;
    return state_;
  }

  // Advances by `steps` in O(log steps). n steps of x -> a x + c are again an
  // affine map x -> A x + C; we compose the maps for 1, 2, 4, ... steps
  // (squaring: A' = A^2, C' = (A + 1) C) for the set bits of `steps`.
  void jump(uint64_t steps) {
    uint64_t power_mult = kMultiplier, power_add = kIncrement;  // the map for 2^k steps
    uint64_t mult = 1, add = 0;                                 // the map for the steps taken so far
    for (; steps > 0; steps >>= 1) {
      if (steps & 1) {
        mult = (power_mult * mult) & kModulusMask;
        add = (power_mult * add + power_add) & kModulusMask;
      }
      power_add = ((power_mult + 1) * power_add) & kModulusMask;
      power_mult = (power_mult * power_mult) & kModulusMask;
    }
    state_ = (mult * state_ + add) & kModulusMask;
  }

 private:
  uint64_t state_;
};

// (x + 1) / 2^31 lies in (0, 1], so Box-Muller's log never sees 0.
inline double uniform(uint64_t x) { return static_cast<double>(x + 1) / 2147483648.0; }

// Writes normals [begin, end) of the sequence for `seed` to out[0 .. end - begin).
inline void generate(uint64_t seed, uint64_t begin, uint64_t end, double* out) {
  // A slice may start or end inside a Box-Muller pair: generate that whole
  // pair and keep only our half, so every split yields the same numbers.
  uint64_t pair_start = begin & ~uint64_t{1};
  Lcg lcg(seed);
  lcg.jump(pair_start);  // two uniforms per pair: normal i starts at uniform i
  for (uint64_t i = pair_start; i < end; i += 2) {
    double u1 = uniform(lcg.next());
    double u2 = uniform(lcg.next());
    // Same operations in the same order as gaussian.py, for bit-identical results.
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 2.0 * std::numbers::pi * u2;
    if (i >= begin) out[i - begin] = radius * std::cos(angle);
    if (i + 1 < end) out[i + 1 - begin] = radius * std::sin(angle);
  }
}

// The half-open slice of [0, count) that `rank` of `world_size` generates:
// the first count % world_size ranks get one number more than the others.
struct Slice {
  uint64_t begin;
  uint64_t end;
};
inline Slice slice_for(uint64_t count, int rank, int world_size) {
  auto bound = [&](uint64_t r) {
    uint64_t ranks = static_cast<uint64_t>(world_size);
    return count / ranks * r + std::min(r, count % ranks);
  };
  return {bound(static_cast<uint64_t>(rank)), bound(static_cast<uint64_t>(rank) + 1)};
}

// Welford's running mean and variance: a naive sum of squares loses digits
// over millions of values.
class Moments {
 public:
  void add(double x) {
    ++count_;
    double delta = x - mean_;
    mean_ += delta / static_cast<double>(count_);
    m2_ += delta * (x - mean_);
  }
  uint64_t count() const { return count_; }
  double mean() const { return mean_; }
  // Population variance (divides by n).
  double variance() const { return count_ > 0 ? m2_ / static_cast<double>(count_) : 0.0; }

 private:
  uint64_t count_ = 0;
  double mean_ = 0.0;
  double m2_ = 0.0;
};

}  // namespace gaussian

#endif  // PESC_EXAMPLES_GAUSSIAN_GAUSSIAN_H_
