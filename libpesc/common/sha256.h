#ifndef PESC_COMMON_SHA256_H_
#define PESC_COMMON_SHA256_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pesc {

// Incremental SHA-256 (OpenSSL underneath). Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // Lowercase hex digest; the object must not be updated afterwards.
  std::string finish_hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view bytes);
absl::StatusOr<std::string> sha256_file_hex(const std::filesystem::path& path);

}  // namespace pesc

#endif  // PESC_COMMON_SHA256_H_
