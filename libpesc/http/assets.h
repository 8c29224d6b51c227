#ifndef PESC_HTTP_ASSETS_H_
#define PESC_HTTP_ASSETS_H_

// The web pages' files (libpesc/http/assets/), built into the library by
// cmake/EmbedAssets.cmake, so a coordinator serves them from any host with
// no network and no files installed beside it.

#include <map>
#include <string_view>

namespace pesc::http {

// File name (relative to assets/) -> its bytes.
const std::map<std::string_view, std::string_view>& embedded_assets();

// The Content-Type a file name's extension calls for.
std::string_view content_type_of(std::string_view name);

}  // namespace pesc::http

#endif  // PESC_HTTP_ASSETS_H_
