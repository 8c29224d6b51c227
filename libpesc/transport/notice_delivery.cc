#include "transport/notice_delivery.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "transport/url_fetch.h"

namespace pesc {
namespace {

using Transfer = std::unique_ptr<CURL, void (*)(CURL*)>;

// What a server answers is not needed: only whether it took the notice.
size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

// Feeds the message to libcurl's upload.
struct Reader {
  std::string_view rest;
};

size_t read_message(char* buffer, size_t size, size_t count, void* reader_pointer) {
  auto* reader = static_cast<Reader*>(reader_pointer);
  const size_t n = std::min(size * count, reader->rest.size());
  std::memcpy(buffer, reader->rest.data(), n);
  reader->rest.remove_prefix(n);
  return n;
}

int abandon_if_asked(void* abandon_pointer, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* abandon = static_cast<const std::atomic<bool>*>(abandon_pointer);
  return abandon != nullptr && abandon->load() ? 1 : 0;
}

Transfer start_transfer(const std::string& url, const DeliveryLimits& limits, char* error_text) {
  init_curl_once();
  Transfer curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return curl;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, static_cast<long>(limits.connect_timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(limits.total_timeout.count()));
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &discard);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, &abandon_if_asked);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, limits.abandon);
  return curl;
}

absl::Status finish_transfer(CURL* curl, const std::string& what, const char* error_text) {
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(what, ": ", error_text[0] != '\0' ? error_text : curl_easy_strerror(code)));
}

}  // namespace

absl::Status post_json(const std::string& url, const std::string& json, const DeliveryLimits& limits) {
  char error_text[CURL_ERROR_SIZE] = {};
  Transfer curl = start_transfer(url, limits, error_text);
  if (!curl) return absl::InternalError("libcurl could not start a transfer");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"), &curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(json.size()));
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);  // a 4xx or 5xx answer did not take it
  return finish_transfer(curl.get(), absl::StrCat("POST to ", url), error_text);
}

absl::Status send_mail(const std::string& smtp_url, const std::string& from, const std::string& to,
                       const std::string& message, const DeliveryLimits& limits) {
  char error_text[CURL_ERROR_SIZE] = {};
  Transfer curl = start_transfer(smtp_url, limits, error_text);
  if (!curl) return absl::InternalError("libcurl could not start a transfer");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> recipients(curl_slist_append(nullptr, to.c_str()),
                                                                 &curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_MAIL_RCPT, recipients.get());
  Reader reader{message};
  curl_easy_setopt(curl.get(), CURLOPT_READFUNCTION, &read_message);
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, &reader);
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  return finish_transfer(curl.get(), absl::StrCat("mail to ", to, " through ", smtp_url), error_text);
}

}  // namespace pesc
