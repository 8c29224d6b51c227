#ifndef PESC_FARM_RESULTS_CONVERSION_H_
#define PESC_FARM_RESULTS_CONVERSION_H_

// The protocol's rank results as the public API's, for whoever builds a
// JobReport from the coordinator's records (Results, the HTTP API).

#include <chrono>
#include <cstdint>
#include <string>

#include "pesc/pesc.h"
#include "pesc/v1/pesc.pb.h"

namespace pesc {

std::chrono::system_clock::time_point from_unix_ms(int64_t ms);
// `output`: the rank's output.txt, when the caller has it.
RankResult to_rank_result(const v1::RankResult& result, std::string output);

}  // namespace pesc

#endif  // PESC_FARM_RESULTS_CONVERSION_H_
