#ifndef PESC_SECURITY_CLIENT_CREDENTIALS_H_
#define PESC_SECURITY_CLIENT_CREDENTIALS_H_

// Where a client or worker finds its token and TLS files. The library
// resolves the defaults, so the CLI, the daemons and the bindings agree:
//   token:   given text, else the token file given (--token-file), else
//            $PESC_TOKEN, else $PESC_TOKEN_FILE, else ~/.config/pesc/token
//            when it exists
//   TLS:     given paths, else $PESC_TLS_CA, $PESC_TLS_CERT, $PESC_TLS_KEY

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "transport/transport.h"

namespace pesc {

struct CredentialSources {
  std::string token;
  std::filesystem::path token_file;
  std::filesystem::path tls_ca;
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  std::string tls_server_name;
};

// Reads the files the sources name (or the defaults). An explicitly named
// file that cannot be read is an error; a missing default is not (the
// coordinator then says how to get a token).
absl::StatusOr<ChannelSecurity> resolve_client_security(const CredentialSources& sources);

// $XDG_CONFIG_HOME/pesc/token, else ~/.config/pesc/token.
std::filesystem::path default_token_file();

}  // namespace pesc

#endif  // PESC_SECURITY_CLIENT_CREDENTIALS_H_
