#ifndef PESC_COMMON_WORKER_GPU_H_
#define PESC_COMMON_WORKER_GPU_H_

// A GPU a worker offers, as its registration names it: what the
// coordinator's registry keeps and what the client lists.

#include <cstdint>
#include <string>

namespace pesc {

struct WorkerGpu {
  int index = 0;  // the driver's: what CUDA_VISIBLE_DEVICES names
  std::string name;
  int64_t memory_bytes = 0;
  double compute_capability = 0;  // major.minor (8.6 for an RTX 3090)

  bool operator==(const WorkerGpu&) const = default;
};

}  // namespace pesc

#endif  // PESC_COMMON_WORKER_GPU_H_
