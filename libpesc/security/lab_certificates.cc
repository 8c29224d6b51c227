#include "security/lab_certificates.h"

#include <sys/stat.h>

#include <functional>
#include <memory>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "security/secret_file.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

absl::Status openssl_error(std::string_view what) {
  char reason[256] = "unknown";
  if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, reason, sizeof reason);
  return absl::InternalError(absl::StrCat("cannot ", std::string(what), ": ", reason));
}

bool is_ip_address(const std::string& name) {
  return name.find_first_not_of("0123456789.") == std::string::npos || name.find(':') != std::string::npos;
}

absl::Status add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) return openssl_error(absl::StrCat("make the certificate extension ", value));
  const bool added = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added ? absl::OkStatus() : openssl_error("add a certificate extension");
}

// A certificate for `key` named `common_name`, signed by `issuer_key`
// (self-signed when `issuer` is null).
absl::StatusOr<Cert> make_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                                      EVP_PKEY* issuer_key, const std::vector<std::pair<int, std::string>>& extensions,
                                      int valid_days) {
  Cert cert(X509_new());
  if (!cert) return openssl_error("make a certificate");
  X509_set_version(cert.get(), 2);
  // A random serial, so two lab CAs never issue look-alike certificates.
  BIGNUM* serial = BN_new();
  BN_rand(serial, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(valid_days) * 24 * 60 * 60);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pesc lab"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  for (const auto& [nid, value] : extensions) {
    if (absl::Status status = add_extension(cert.get(), signer, nid, value); !status.ok()) return status;
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return openssl_error("sign a certificate");
  return cert;
}

absl::Status write_pem(const fs::path& path, mode_t mode, const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return openssl_error(absl::StrCat("encode ", path.string()));
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return write_file_with_mode(path, std::string_view(data, static_cast<size_t>(size)), mode);
}

absl::Status write_key(const fs::path& path, EVP_PKEY* key) {
  return write_pem(path, 0600, [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

absl::Status write_cert(const fs::path& path, X509* cert) {
  return write_pem(path, 0644, [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

absl::StatusOr<Key> make_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return openssl_error("make an EC P-256 key");
  return key;
}

}  // namespace

absl::StatusOr<LabCertificates> make_lab_certificates(const fs::path& dir, const std::vector<std::string>& server_names,
                                                      int valid_days) {
  LabCertificates paths{dir / "ca.pem",     dir / "ca.key",     dir / "server.pem",
                        dir / "server.key", dir / "client.pem", dir / "client.key"};
  std::error_code error;
  if (fs::exists(paths.ca_cert, error) || fs::exists(paths.ca_key, error)) {
    return absl::AlreadyExistsError(absl::StrCat(dir.string(), " already holds a CA; use another directory, or remove ",
                                                 "it if every certificate it signed should stop working"));
  }
  fs::create_directories(dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
  ::chmod(dir.c_str(), 0700);

  std::vector<std::string> alt_names = {"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
  std::string common_name = "localhost";
  for (const std::string& name : server_names) {
    if (name.empty()) continue;
    alt_names.push_back(absl::StrCat(is_ip_address(name) ? "IP:" : "DNS:", name));
    if (common_name == "localhost") common_name = name;
  }

  absl::StatusOr<Key> ca_key = make_key();
  if (!ca_key.ok()) return ca_key.status();
  absl::StatusOr<Cert> ca = make_certificate(
      ca_key->get(), absl::StrCat("pesc lab CA ", random_hex(4)), nullptr, ca_key->get(),
      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"}, {NID_key_usage, "critical,keyCertSign,cRLSign"},
       {NID_subject_key_identifier, "hash"}},
      valid_days);
  if (!ca.ok()) return ca.status();

  absl::StatusOr<Key> server_key = make_key();
  if (!server_key.ok()) return server_key.status();
  absl::StatusOr<Cert> server = make_certificate(
      server_key->get(), common_name, ca->get(), ca_key->get(),
      {{NID_basic_constraints, "critical,CA:FALSE"}, {NID_key_usage, "critical,digitalSignature,keyAgreement"},
       {NID_ext_key_usage, "serverAuth"}, {NID_subject_alt_name, absl::StrJoin(alt_names, ",")}},
      valid_days);
  if (!server.ok()) return server.status();

  absl::StatusOr<Key> client_key = make_key();
  if (!client_key.ok()) return client_key.status();
  absl::StatusOr<Cert> client = make_certificate(
      client_key->get(), "pesc client", ca->get(), ca_key->get(),
      {{NID_basic_constraints, "critical,CA:FALSE"}, {NID_key_usage, "critical,digitalSignature,keyAgreement"},
       {NID_ext_key_usage, "clientAuth"}},
      valid_days);
  if (!client.ok()) return client.status();

  for (absl::Status status : {write_key(paths.ca_key, ca_key->get()), write_cert(paths.ca_cert, ca->get()),
                              write_key(paths.server_key, server_key->get()),
                              write_cert(paths.server_cert, server->get()),
                              write_key(paths.client_key, client_key->get()),
                              write_cert(paths.client_cert, client->get())}) {
    if (!status.ok()) return status;
  }
  return paths;
}

}  // namespace pesc
