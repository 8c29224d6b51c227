#include "transport/url_fetch.h"

#include <curl/curl.h>

#include <cstdio>
#include <memory>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pesc {
namespace fs = std::filesystem;

bool is_fetchable_url(const std::string& text) {
  for (const char* scheme : {"http://", "https://", "ftp://", "file://"}) {
    if (absl::StartsWithIgnoreCase(text, scheme)) return true;
  }
  return false;
}

namespace {

size_t write_to_file(char* data, size_t size, size_t count, void* file) {
  return std::fwrite(data, size, count, static_cast<std::FILE*>(file)) * size;
}

// curl_global_init is not thread-safe; do it once, before any fetch.
void init_curl_once() {
  static const bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)initialised;
}

}  // namespace

absl::Status fetch_url(const std::string& url, const fs::path& destination) {
  init_curl_once();
  fs::path temporary = destination;
  temporary += ".part";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(temporary.c_str(), "wb"), &std::fclose);
  if (!file) return absl::PermissionDeniedError(absl::StrCat("cannot write ", temporary.string()));
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return absl::InternalError("libcurl could not start a transfer");
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &write_to_file);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, file.get());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);  // an HTTP 404 is an error, not a file
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);     // threads: no SIGALRM for timeouts
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_text);
  CURLcode code = curl_easy_perform(curl.get());
  // fclose flushes, and reports a write the disk refused.
  const bool written = std::fclose(file.release()) == 0;
  std::error_code ignored;
  if (code != CURLE_OK || !written) {
    fs::remove(temporary, ignored);
    return absl::UnavailableError(absl::StrCat("cannot fetch ", url, ": ",
                                               error_text[0] != '\0' ? error_text : curl_easy_strerror(code)));
  }
  fs::rename(temporary, destination, ignored);
  if (ignored) return absl::InternalError(absl::StrCat("cannot place ", destination.string()));
  return absl::OkStatus();
}

}  // namespace pesc
