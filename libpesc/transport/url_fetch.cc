#include "transport/url_fetch.h"

#include <curl/curl.h>

#include <cstdio>
#include <memory>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fault.h"
#include "common/files.h"

namespace pesc {
namespace fs = std::filesystem;

bool is_fetchable_url(const std::string& text) {
  for (const char* scheme : {"http://", "https://", "ftp://", "file://"}) {
    if (absl::StartsWithIgnoreCase(text, scheme)) return true;
  }
  return false;
}

namespace {

// Where a transfer goes, and the errno of a write that failed there.
struct FileSink {
  std::FILE* file = nullptr;
  int error = 0;
};

size_t write_to_file(char* data, size_t size, size_t count, void* sink_pointer) {
  auto* sink = static_cast<FileSink*>(sink_pointer);
  const size_t written = std::fwrite(data, size, count, sink->file);
  if (written < count) sink->error = errno;
  return written * size;
}

// The URL itself is wrong (no such file, refused, malformed): every worker
// would fail alike, so it is the job's fault. A host that cannot be reached
// may be this worker's network.
bool names_nothing_to_fetch(CURLcode code) {
  switch (code) {
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_LOGIN_DENIED:
      return true;
    default:
      return false;
  }
}

}  // namespace

void init_curl_once() {
  static const bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)initialised;
}

absl::Status fetch_url(const std::string& url, const fs::path& destination) {
  init_curl_once();
  fs::path temporary = destination;
  temporary += ".part";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(temporary.c_str(), "wb"), &std::fclose);
  if (!file) return file_error("write", temporary, errno);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return absl::InternalError("libcurl could not start a transfer");
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &write_to_file);
  FileSink sink{.file = file.get()};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);  // an HTTP 404 is an error, not a file
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);     // threads: no SIGALRM for timeouts
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_text);
  CURLcode code = curl_easy_perform(curl.get());
  // fclose flushes, and reports a write the disk refused.
  if (std::fclose(file.release()) != 0 && sink.error == 0) sink.error = errno;
  std::error_code error;
  if (sink.error != 0) {
    fs::remove(temporary, error);
    return file_error("write", temporary, sink.error);
  }
  if (code != CURLE_OK) {
    fs::remove(temporary, error);
    absl::Status failed = absl::UnavailableError(
        absl::StrCat("cannot fetch ", url, ": ", error_text[0] != '\0' ? error_text : curl_easy_strerror(code)));
    return names_nothing_to_fetch(code) ? job_fault(failed) : failed;
  }
  fs::rename(temporary, destination, error);
  if (error) return file_error("place", destination, error);
  return absl::OkStatus();
}

}  // namespace pesc
