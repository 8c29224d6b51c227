#ifndef PESC_TRANSPORT_GRPC_LOG_H_
#define PESC_TRANSPORT_GRPC_LOG_H_

namespace pesc {

// Keeps gRPC's own log to errors, and drops its TLS handshake errors
// ("Handshake failed with fatal error SSL_ERROR_SSL ..."): the client says
// what went wrong in words a user can act on (tls_diagnosis.h), and a
// line of OpenSSL jargon before that only confuses. Once per process;
// pesc's own messages are not gRPC's log and are never touched.
void quiet_grpc_log();

}  // namespace pesc

#endif  // PESC_TRANSPORT_GRPC_LOG_H_
