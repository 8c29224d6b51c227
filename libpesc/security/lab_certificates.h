#ifndef PESC_SECURITY_LAB_CERTIFICATES_H_
#define PESC_SECURITY_LAB_CERTIFICATES_H_

// `pesc certs init DIR`: a small certificate authority for one lab and the
// certificates its coordinator, workers and clients present, so nobody needs
// to know openssl. Keys are ECDSA P-256, certificates SHA-256 signed.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

struct LabCertificates {
  std::filesystem::path ca_cert;      // give to every worker and client: --tls-ca
  std::filesystem::path ca_key;       // keep offline; signs further certificates
  std::filesystem::path server_cert;  // the coordinator's --tls-cert
  std::filesystem::path server_key;   // the coordinator's --tls-key
  std::filesystem::path client_cert;  // workers' and clients' --tls-cert under mutual TLS
  std::filesystem::path client_key;
};

// Writes ca.pem, ca.key, server.pem, server.key, client.pem, client.key into
// `dir` (created with mode 0700; keys 0600). The server certificate names
// `server_names` (host names or IP addresses) besides localhost, 127.0.0.1
// and ::1. Refuses to overwrite an existing CA.
absl::StatusOr<LabCertificates> make_lab_certificates(const std::filesystem::path& dir,
                                                      const std::vector<std::string>& server_names, int valid_days = 825);

}  // namespace pesc

#endif  // PESC_SECURITY_LAB_CERTIFICATES_H_
