#ifndef PESC_COMMON_LATENCY_HISTOGRAM_H_
#define PESC_COMMON_LATENCY_HISTOGRAM_H_

// How long calls took, in Prometheus's histogram shape (cumulative buckets,
// a sum and a count), counted without a lock so that timing a call costs
// next to nothing. Thread-safe.

#include <array>
#include <atomic>
#include <cstdint>

namespace pesc {

class LatencyHistogram {
 public:
  // Upper bounds in seconds, from 0.1 ms to 10 s.
  static constexpr std::array<double, 12> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   1.0,    10.0};

  void observe(double seconds) {
    for (size_t i = 0; i < kBounds.size(); ++i) {
      if (seconds <= kBounds[i]) {
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  }

  struct Snapshot {
    std::array<uint64_t, kBounds.size()> cumulative{};  // calls at most kBounds[i]
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const {
    Snapshot snapshot;
    uint64_t running = 0;
    for (size_t i = 0; i < kBounds.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      snapshot.cumulative[i] = running;
    }
    snapshot.count = count_.load(std::memory_order_relaxed);
    snapshot.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return snapshot;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size()> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace pesc

#endif  // PESC_COMMON_LATENCY_HISTOGRAM_H_
