#ifndef PESC_WORKER_GPU_INVENTORY_H_
#define PESC_WORKER_GPU_INVENTORY_H_

// The NVIDIA GPUs of this machine, as `nvidia-smi` on PATH reports them; none
// when it is absent or fails (a host without GPUs or driver).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

// Runs `nvidia-smi --query-gpu=index,name,memory.total,compute_cap
// --format=csv,noheader,nounits`; empty when there is none.
std::vector<v1::Gpu> detect_gpus();

// Parses that command's output: one "index, name, MiB, major.minor" line
// per GPU.
absl::StatusOr<std::vector<v1::Gpu>> parse_nvidia_smi(const std::string& csv);

// "2 GPUs: 0 NVIDIA RTX A4000 (8.6, 16 GiB), 1 ..." for a startup line.
std::string describe_gpus(const std::vector<v1::Gpu>& gpus);

}  // namespace pesc

#endif  // PESC_WORKER_GPU_INVENTORY_H_
