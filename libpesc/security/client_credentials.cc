#include "security/client_credentials.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

absl::StatusOr<std::string> read_named_file(const fs::path& path, std::string_view what) {
  absl::StatusOr<std::string> text = read_file(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot read the ", std::string(what), " ", path.string(), ": ", text.status().message()));
  }
  return text;
}

// A path given, else one named by an environment variable.
fs::path given_or_environment(const fs::path& given, const char* variable) {
  return given.empty() ? fs::path(environment(variable)) : given;
}

}  // namespace

fs::path default_token_file() {
  std::string config = environment("XDG_CONFIG_HOME");
  if (config.empty()) config = environment("HOME") + "/.config";
  return fs::path(config) / "pesc" / "token";
}

absl::StatusOr<ChannelSecurity> resolve_client_security(const CredentialSources& sources) {
  ChannelSecurity security;
  const fs::path named_file = !sources.token_file.empty() ? sources.token_file
                              : environment("PESC_TOKEN").empty() ? fs::path(environment("PESC_TOKEN_FILE"))
                                                                  : fs::path();
  std::error_code error;
  if (!sources.token.empty()) {
    security.token = sources.token;
  } else if (!named_file.empty() || !environment("PESC_TOKEN").empty()) {
    if (named_file.empty()) {
      security.token = environment("PESC_TOKEN");
    } else {
      absl::StatusOr<std::string> token = read_named_file(named_file, "token file");
      if (!token.ok()) return token.status();
      security.token = *token;
    }
  } else if (fs::exists(default_token_file(), error)) {
    absl::StatusOr<std::string> token = read_named_file(default_token_file(), "token file");
    if (!token.ok()) return token.status();
    security.token = *token;
  }
  security.token = std::string(absl::StripAsciiWhitespace(security.token));

  const fs::path ca = given_or_environment(sources.tls_ca, "PESC_TLS_CA");
  const fs::path cert = given_or_environment(sources.tls_cert, "PESC_TLS_CERT");
  const fs::path key = given_or_environment(sources.tls_key, "PESC_TLS_KEY");
  if (ca.empty() && (!cert.empty() || !key.empty())) {
    return absl::InvalidArgumentError("a client certificate needs --tls-ca too: the CA that signed the coordinator's");
  }
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: a certificate and its key");
  }
  if (!ca.empty()) {
    absl::StatusOr<std::string> pem = read_named_file(ca, "TLS CA certificate");
    if (!pem.ok()) return pem.status();
    security.tls_ca = *std::move(pem);
  }
  if (!cert.empty()) {
    absl::StatusOr<std::string> pem = read_named_file(cert, "TLS certificate");
    if (!pem.ok()) return pem.status();
    security.tls_cert = *std::move(pem);
    pem = read_named_file(key, "TLS key");
    if (!pem.ok()) return pem.status();
    security.tls_key = *std::move(pem);
  }
  security.tls_server_name = sources.tls_server_name;
  return security;
}

}  // namespace pesc
