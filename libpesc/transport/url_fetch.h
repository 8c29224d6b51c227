#ifndef PESC_TRANSPORT_URL_FETCH_H_
#define PESC_TRANSPORT_URL_FETCH_H_

// Fetching a shared file straight from where it lives (libcurl), so large
// data need not pass through the coordinator.

#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace pesc {

// curl_global_init is not thread-safe: every transfer calls this first.
void init_curl_once();

// True for the schemes workers fetch themselves: http, https, ftp, file.
bool is_fetchable_url(const std::string& text);

// Downloads `url` into `destination` (through a temporary file). Errors name
// the URL and what went wrong (an HTTP status, a refused connection, ...).
absl::Status fetch_url(const std::string& url, const std::filesystem::path& destination);

}  // namespace pesc

#endif  // PESC_TRANSPORT_URL_FETCH_H_
