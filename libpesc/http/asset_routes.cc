// The dashboard's pages and files, from the copy built into the library.
#include "http/api.h"
#include "http/assets.h"

namespace pesc::http {
namespace {

void serve_asset(httplib::Response& response, std::string_view name) {
  auto asset = embedded_assets().find(name);
  if (asset == embedded_assets().end()) {
    return reply_error(response, absl::NotFoundError(std::string("no asset ") + std::string(name)));
  }
  response.set_header("Cache-Control", "no-cache");
  // The pages load nothing from elsewhere; a page injected into them could not either.
  response.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_content(std::string(asset->second), std::string(content_type_of(name)).c_str());
}

}  // namespace

void add_asset_routes(Api& api) {
  api.open_get("/", [](const httplib::Request&, httplib::Response& response) { serve_asset(response, "index.html"); });
  api.open_get("/index.html",
               [](const httplib::Request&, httplib::Response& response) { serve_asset(response, "index.html"); });
  api.open_get(R"(/assets/([A-Za-z0-9._/-]+))", [](const httplib::Request& request, httplib::Response& response) {
    const std::string name = request.matches[1];
    if (name.find("..") != std::string::npos) return reply_error(response, absl::NotFoundError("no such asset"));
    serve_asset(response, name);
  });
}

}  // namespace pesc::http
