#ifndef PESC_TRANSPORT_NOTICE_DELIVERY_H_
#define PESC_TRANSPORT_NOTICE_DELIVERY_H_

// Delivering a short notice (libcurl): a JSON POST to a web hook, or an
// e-mail through an SMTP server. One try each; the caller retries.

#include <atomic>
#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace pesc {

struct DeliveryLimits {
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds total_timeout{30};
  // Set from another thread, it ends a transfer under way (a stopping daemon).
  std::atomic<bool>* abandon = nullptr;
};

// POSTs `json` to an http:// or https:// `url`; an HTTP status of 400 or
// more is an error.
absl::Status post_json(const std::string& url, const std::string& json, const DeliveryLimits& limits);

// Sends `message` (headers, a blank line, the body, CRLF line ends) from
// `from` to `to` through `smtp_url` (smtp://host:port, smtps://...).
absl::Status send_mail(const std::string& smtp_url, const std::string& from, const std::string& to,
                       const std::string& message, const DeliveryLimits& limits);

}  // namespace pesc

#endif  // PESC_TRANSPORT_NOTICE_DELIVERY_H_
