#include "transport/tls_diagnosis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pesc {
namespace {

// The probe must not keep a user waiting: the call that failed already did.
constexpr int kProbeTimeoutMs = 2000;

constexpr char kPassCa[] = "pass --tls-ca FILE or set PESC_TLS_CA";
constexpr char kPassClientCert[] = "--tls-cert/--tls-key (or PESC_TLS_CERT, PESC_TLS_KEY)";

struct Endpoint {
  std::string host;
  std::string port;
};

// "host:port", "[v6]:port", with gRPC's optional "dns:///" or "ipv4:".
std::optional<Endpoint> split_address(std::string_view address) {
  for (std::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (address.starts_with(scheme)) {
      address.remove_prefix(scheme.size());
      break;
    }
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return Endpoint{std::string(host), std::string(address.substr(colon + 1))};
}

// A connected TCP socket with send and receive timeouts, or -1 when
// nothing accepts a connection there.
int connect_tcp(const Endpoint& endpoint) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(endpoint.host.c_str(), endpoint.port.c_str(), &hints, &found) != 0) return -1;
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EINPROGRESS) {
      pollfd wait{.fd = fd, .events = POLLOUT, .revents = 0};
      int error = 0;
      socklen_t size = sizeof(error);
      if (poll(&wait, 1, kProbeTimeoutMs) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 ||
          error != 0) {
        close(fd);
        continue;
      }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const timeval timeout{.tv_sec = kProbeTimeoutMs / 1000, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    return fd;
  }
  return -1;
}

using SslCtx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using Ssl = std::unique_ptr<SSL, decltype(&SSL_free)>;

std::string name_text(const X509_NAME* name) {
  if (name == nullptr) return "?";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// Trusts the CAs in `pem` (without failing the handshake on a mismatch:
// the probe reads the verdict afterwards) and presents the client's
// certificate, as the gRPC channel would.
SslCtx make_context(const ChannelSecurity& security) {
  SslCtx context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!context) return context;
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  X509_STORE* store = SSL_CTX_get_cert_store(context.get());
  std::unique_ptr<BIO, decltype(&BIO_free)> cas(
      BIO_new_mem_buf(security.tls_ca.data(), static_cast<int>(security.tls_ca.size())), BIO_free);
  while (X509* ca = PEM_read_bio_X509(cas.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, ca);
    X509_free(ca);
  }
  if (!security.tls_cert.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> cert(
        BIO_new_mem_buf(security.tls_cert.data(), static_cast<int>(security.tls_cert.size())), BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key(
        BIO_new_mem_buf(security.tls_key.data(), static_cast<int>(security.tls_key.size())), BIO_free);
    X509* x509 = PEM_read_bio_X509(cert.get(), nullptr, nullptr, nullptr);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr);
    if (x509 != nullptr) SSL_CTX_use_certificate(context.get(), x509);
    if (pkey != nullptr) SSL_CTX_use_PrivateKey(context.get(), pkey);
    X509_free(x509);
    EVP_PKEY_free(pkey);
  }
  ERR_clear_error();
  return context;
}

// True when the last failure was an alert from the coordinator about this
// client's certificate (TLS 1.2 sends it in the handshake, TLS 1.3 after).
bool refused_client_certificate() {
  bool refused = false;
  while (const unsigned long error = ERR_get_error()) {
    switch (ERR_GET_REASON(error)) {
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
        refused = true;
        break;
      default:
        break;
    }
  }
  return refused;
}

// The CAs whose client certificates the coordinator asked for, as it
// named them in its certificate request.
std::string wanted_issuers(SSL* ssl) {
  const STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(ssl);
  std::string text;
  for (int i = 0; names != nullptr && i < sk_X509_NAME_num(names); ++i) {
    absl::StrAppend(&text, i > 0 ? " or " : "", "\"", name_text(sk_X509_NAME_value(names, i)), "\"");
  }
  return text.empty() ? "its --tls-client-ca" : text;
}

std::string client_certificate_refused(SSL* ssl, const ChannelSecurity& security) {
  if (security.tls_cert.empty()) {
    return absl::StrCat("this coordinator requires a client certificate (mutual TLS) signed by ", wanted_issuers(ssl),
                        ": pass ", kPassClientCert, " from the same `pesc certs init`");
  }
  return absl::StrCat("this coordinator refused the client certificate given with ", kPassClientCert,
                      ": it accepts only certificates signed by ", wanted_issuers(ssl));
}

// The coordinator asked for a client certificate during the handshake.
bool asked_for_client_certificate(SSL* ssl) {
  const STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(ssl);
  return names != nullptr && sk_X509_NAME_num(names) > 0;
}

// The subject of the first certificate in `pem`, the CA the user gave.
std::string first_subject(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  return cert ? name_text(X509_get_subject_name(cert.get())) : "?";
}

std::string server_certificate_untrusted(SSL* ssl, const ChannelSecurity& security, long verdict) {
  std::string issuer = "?";
  if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    issuer = name_text(X509_get_issuer_name(peer));
    X509_free(peer);
  }
  return absl::StrCat("the coordinator's certificate is not signed by the CA given with --tls-ca or PESC_TLS_CA, \"",
                      first_subject(security.tls_ca), "\" (", X509_verify_cert_error_string(verdict),
                      "): it is signed by \"", issuer, "\"; pass the ca.pem made with the coordinator's certificate");
}

// The host names and addresses the certificate is for (its subject
// alternative names), as `pesc certs init --host` wrote them.
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  using Names = std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)>;
  Names alt(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)),
            GENERAL_NAMES_free);
  for (int i = 0; alt && i < sk_GENERAL_NAME_num(alt.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* dns = name->d.dNSName;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                         static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const int length = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = "?";
      if (length == 4 || length == 16) {
        inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text);
      }
      names.emplace_back(text);
    }
  }
  return names;
}

// The certificate is trusted but names other hosts than the one dialed
// (gRPC checks the name as a browser does).
std::optional<std::string> wrong_host(SSL* ssl, const std::string& host) {
  std::unique_ptr<X509, decltype(&X509_free)> peer(SSL_get1_peer_certificate(ssl), X509_free);
  if (!peer) return std::nullopt;
  if (X509_check_host(peer.get(), host.c_str(), host.size(), 0, nullptr) == 1 ||
      X509_check_ip_asc(peer.get(), host.c_str(), 0) == 1) {
    return std::nullopt;
  }
  return absl::StrCat("the coordinator's certificate is for ", absl::StrJoin(certificate_names(peer.get()), ", "),
                      ", not ", host, ": dial one of those names or reissue with pesc certs init --host ", host);
}

// The handshake worked: a plaintext client was the mistake, or the
// coordinator rejects the client's certificate once it has read it.
std::optional<std::string> after_handshake(SSL* ssl, const ChannelSecurity& security, const std::string& host) {
  if (security.tls_ca.empty()) {
    std::string issuer = "?";
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      issuer = name_text(X509_get_issuer_name(peer));
      X509_free(peer);
    }
    return absl::StrCat("this coordinator speaks TLS: ", kPassCa, " (the ca.pem from `pesc certs init`, \"", issuer,
                        "\", that signed its certificate)");
  }
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) return server_certificate_untrusted(ssl, security, verdict);
  if (std::optional<std::string> mismatch = wrong_host(ssl, host)) return mismatch;
  // A gRPC server speaks first (its HTTP/2 settings) once it accepts the
  // client; one that rejects the client's certificate under TLS 1.3 sends an
  // alert or just hangs up (gRPC does), after the client's handshake is done.
  char byte = 0;
  if (SSL_read(ssl, &byte, 1) > 0) return std::nullopt;
  const bool timed_out = SSL_get_error(ssl, -1) == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
  if (refused_client_certificate() || (!timed_out && asked_for_client_certificate(ssl))) {
    return client_certificate_refused(ssl, security);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> diagnose_tls(const std::string& address, const ChannelSecurity& security) {
  const std::optional<Endpoint> endpoint = split_address(address);
  if (!endpoint) return std::nullopt;
  const int fd = connect_tcp(*endpoint);
  if (fd < 0) return std::nullopt;  // nothing listens: the usual advice fits
  SslCtx context = make_context(security);
  Ssl ssl(context ? SSL_new(context.get()) : nullptr, SSL_free);
  if (!ssl) {
    close(fd);
    return std::nullopt;
  }
  SSL_set_fd(ssl.get(), fd);
  const std::string server_name = security.tls_server_name.empty() ? endpoint->host : security.tls_server_name;
  SSL_set_tlsext_host_name(ssl.get(), server_name.c_str());
  static constexpr unsigned char kAlpn[] = {2, 'h', '2'};  // gRPC servers insist on HTTP/2
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof(kAlpn));
  std::optional<std::string> diagnosis;
  if (SSL_connect(ssl.get()) == 1) {
    diagnosis = after_handshake(ssl.get(), security, server_name);
  } else if (refused_client_certificate()) {
    diagnosis = client_certificate_refused(ssl.get(), security);
  } else if (!security.tls_ca.empty()) {
    diagnosis = absl::StrCat("the coordinator at ", address,
                             " does not speak TLS (no TLS handshake): leave --tls-ca and PESC_TLS_CA unset for it, "
                             "or start it with --tls-cert and --tls-key");
  }
  ERR_clear_error();
  close(fd);
  return diagnosis;
}

absl::Status explain_unreachable(const std::string& address, const ChannelSecurity& security,
                                 const absl::Status& cause) {
  if (std::optional<std::string> mistake = diagnose_tls(address, security)) {
    return absl::UnavailableError(absl::StrCat("cannot talk to the pesc coordinator at ", address, ": ", *mistake));
  }
  return coordinator_unreachable(address, cause);
}

}  // namespace pesc
