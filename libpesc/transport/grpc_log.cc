#include "transport/grpc_log.h"

#include <grpc/support/log.h>

#include <cstdio>
#include <mutex>
#include <string_view>

namespace pesc {
namespace {

// gRPC's TLS handshake code (tsi) and the handshaker that reports its failures.
bool from_tls_handshake(std::string_view file) {
  return file.find("/tsi/") != std::string_view::npos || file.find("security_handshaker") != std::string_view::npos;
}

void log_errors_but_handshakes(gpr_log_func_args* args) {
  if (args->severity < GPR_LOG_SEVERITY_ERROR || from_tls_handshake(args->file == nullptr ? "" : args->file)) return;
  std::fprintf(stderr, "grpc %s:%d: %s\n", args->file == nullptr ? "?" : args->file, args->line, args->message);
}

}  // namespace

void quiet_grpc_log() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    gpr_set_log_function(log_errors_but_handshakes);
  });
}

}  // namespace pesc
