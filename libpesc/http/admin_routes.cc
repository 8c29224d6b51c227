// Users, tokens and rooms: what `pesc admin ...` does, for the admin.
#include "http/api.h"

namespace pesc::http {

void add_admin_routes(Api&) {}

}  // namespace pesc::http
