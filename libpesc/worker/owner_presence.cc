#include "worker/owner_presence.h"

#include <sys/stat.h>
#include <utmp.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

struct Session {
  std::string user;
  std::string line;  // its terminal below /dev, e.g. pts/1
};

std::vector<Session> logged_in(const fs::path& utmp_file) {
  std::vector<Session> sessions;
  std::ifstream in(utmp_file, std::ios::binary);
  struct utmp record;
  while (in.read(reinterpret_cast<char*>(&record), sizeof record)) {
    if (record.ut_type != USER_PROCESS) continue;
    sessions.push_back({std::string(record.ut_user, strnlen(record.ut_user, sizeof record.ut_user)),
                        std::string(record.ut_line, strnlen(record.ut_line, sizeof record.ut_line))});
  }
  return sessions;
}

std::optional<absl::Time> last_access(const fs::path& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return absl::TimeFromTimespec(info.st_atim);
}

// The latest use of anything someone types or points with, and its name.
struct LastUse {
  absl::Time when = absl::InfinitePast();
  std::string what;
  bool known = false;  // some terminal or device could be looked at

  void consider(const std::optional<absl::Time>& used, const std::string& name) {
    if (!used) return;
    known = true;
    if (*used > when) {
      when = *used;
      what = name;
    }
  }
};

}  // namespace

std::string owner_presence(const OwnerPolicy& policy, absl::Time now) {
  const std::vector<Session> sessions = logged_in(policy.utmp);
  LastUse last;
  for (const Session& session : sessions) {
    last.consider(last_access(policy.dev_dir / session.line), absl::StrCat(session.user, "'s terminal ", session.line));
  }
  for (const fs::path& dir : policy.input_dirs) {
    std::error_code error;
    for (auto it = fs::directory_iterator(dir, error); !error && it != fs::directory_iterator(); it.increment(error)) {
      last.consider(last_access(it->path()), absl::StrCat("input device ", it->path().filename().string()));
    }
  }
  const absl::Duration idle = now - last.when;
  if (last.known && idle < absl::FromChrono(policy.owner_idle)) {
    return absl::StrFormat("%s used %.0f s ago", last.what, absl::ToDoubleSeconds(std::max(idle, absl::ZeroDuration())));
  }
  if (!last.known && !sessions.empty()) return absl::StrCat(sessions.front().user, " is logged in");
  return "";
}

}  // namespace pesc
