#include "executor/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMount = "/sys/fs/cgroup";

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

absl::Status write_text(const fs::path& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path.string(), ": ", std::strerror(errno)));
  ssize_t written = ::write(fd, text.data(), text.size());
  int error = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", path.string(), ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

// The value of `key` in a "key value" per line file (memory.events,
// memory.oom_control); 0 when absent.
int64_t keyed_value(const fs::path& file, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(read_text(file), '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
    int64_t value = 0;
    if (words.size() == 2 && words[0] == key &&
        absl::SimpleAtoi(words[1], &value)) {
      return value;
    }
  }
  return 0;
}

// This process's cgroup in the hierarchy named `controller` ("" for v2),
// from /proc/self/cgroup lines "id:controllers:/path".
std::optional<std::string> own_cgroup(const std::string& controller) {
  for (absl::string_view line : absl::StrSplit(read_text("/proc/self/cgroup"), '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (controller.empty() ? parts[0] == "0" && parts[1].empty()
                           : absl::StrContains(absl::StrCat(",", parts[1], ","), absl::StrCat(",", controller, ","))) {
      return std::string(absl::StripPrefix(parts[2], "/"));
    }
  }
  return std::nullopt;
}

std::string tree_name() { return absl::StrCat("pesc-", ::getpid()); }

// Trees a killed worker left behind (their processes died with its ranks).
void remove_stale_trees(const fs::path& parent) {
  std::error_code error;
  for (auto it = fs::directory_iterator(parent, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    pid_t owner = 0;
    if (!absl::StartsWith(name, "pesc-") || !absl::SimpleAtoi(name.substr(5), &owner)) continue;
    if (owner == ::getpid() || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    for (auto rank = fs::directory_iterator(it->path(), ignored); !ignored && rank != fs::directory_iterator();
         rank.increment(ignored)) {
      if (rank->is_directory(ignored)) ::rmdir(rank->path().c_str());
    }
    ::rmdir(it->path().c_str());
  }
}

// A directory of ours below `parent`, or an error when we may not make one.
absl::StatusOr<fs::path> make_own_dir(const fs::path& parent) {
  remove_stale_trees(parent);
  fs::path dir = parent / tree_name();
  std::error_code error;
  fs::create_directory(dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
  return dir;
}

// cgroup v2 forbids processes in a cgroup that hands controllers to its
// children, so this process first moves into a leaf of its own.
absl::StatusOr<fs::path> open_v2() {
  fs::path unified = fs::exists(fs::path(kMount) / "cgroup.controllers") ? fs::path(kMount)
                                                                          : fs::path(kMount) / "unified";
  std::optional<std::string> own = own_cgroup("");
  if (!own) return absl::NotFoundError("no cgroup v2 hierarchy");
  fs::path base = unified / *own;
  std::string controllers = read_text(base / "cgroup.controllers");
  if (!absl::StrContains(controllers, "memory") || !absl::StrContains(controllers, "pids")) {
    return absl::NotFoundError("cgroup v2 has no memory and pids controllers for us");
  }
  if (!write_text(base / "cgroup.subtree_control", "+memory +pids").ok()) {
    fs::path leaf = base / "pesc-worker";
    std::error_code ignored;
    fs::create_directory(leaf, ignored);
    if (auto moved = write_text(leaf / "cgroup.procs", "0"); !moved.ok()) return moved;
    if (auto enabled = write_text(base / "cgroup.subtree_control", "+memory +pids"); !enabled.ok()) return enabled;
  }
  auto dir = make_own_dir(base);
  if (!dir.ok()) return dir.status();
  if (auto enabled = write_text(*dir / "cgroup.subtree_control", "+memory +pids"); !enabled.ok()) {
    ::rmdir(dir->c_str());
    return enabled;
  }
  return dir;
}

absl::StatusOr<fs::path> open_v1(const std::string& controller) {
  std::optional<std::string> own = own_cgroup(controller);
  if (!own) return absl::NotFoundError(absl::StrCat("no cgroup v1 ", controller, " hierarchy"));
  return make_own_dir(fs::path(kMount) / controller / *own);
}

// Removing a cgroup fails while its last processes are still exiting.
void remove_when_empty(const fs::path& dir) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<CgroupTree>> CgroupTree::open() {
  std::shared_ptr<CgroupTree> tree(new CgroupTree);
  if (auto v2 = open_v2(); v2.ok()) {
    tree->v2_ = true;
    tree->memory_root_ = tree->pids_root_ = *v2;
    return tree;
  } else {
    auto memory = open_v1("memory");
    auto pids = open_v1("pids");
    if (memory.ok() && pids.ok()) {
      tree->memory_root_ = *memory;
      tree->pids_root_ = *pids;
      return tree;
    }
    if (memory.ok()) ::rmdir(memory->c_str());
    if (pids.ok()) ::rmdir(pids->c_str());
    return absl::UnavailableError(absl::StrCat(v2.status().message(), "; ",
                                               (memory.ok() ? pids : memory).status().message()));
  }
}

CgroupTree::~CgroupTree() {
  ::rmdir(memory_root_.c_str());
  if (pids_root_ != memory_root_) ::rmdir(pids_root_.c_str());
}

std::string CgroupTree::describe() const { return v2_ ? "cgroup v2" : "cgroup v1 (memory, pids)"; }

absl::StatusOr<std::unique_ptr<RankCgroup>> CgroupTree::create(const ResourceLimits& limits) {
  std::string name;
  {
    absl::MutexLock lock(&mutex_);
    name = absl::StrCat("rank-", next_++);
  }
  std::unique_ptr<RankCgroup> cgroup(new RankCgroup);
  std::vector<fs::path> dirs = {memory_root_ / name};
  if (!v2_) dirs.push_back(pids_root_ / name);
  for (const fs::path& dir : dirs) {
    std::error_code error;
    fs::create_directory(dir, error);
    if (error) return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
    cgroup->dirs_.push_back({dir, v2_});
  }
  cgroup->memory_dir_ = dirs.front();
  cgroup->memory_v2_ = v2_;
  const fs::path& pids_dir = dirs.back();
  if (limits.memory_bytes > 0) {
    const std::string bytes = absl::StrCat(limits.memory_bytes);
    if (v2_) {
      absl::Status set = write_text(cgroup->memory_dir_ / "memory.max", bytes);
      if (!set.ok()) return set;
      // Swap would let the rank live on past its limit, only slower.
      (void)write_text(cgroup->memory_dir_ / "memory.swap.max", "0");
      (void)write_text(cgroup->memory_dir_ / "memory.oom.group", "1");
    } else {
      absl::Status set = write_text(cgroup->memory_dir_ / "memory.limit_in_bytes", bytes);
      if (!set.ok()) return set;
      (void)write_text(cgroup->memory_dir_ / "memory.memsw.limit_in_bytes", bytes);
    }
  }
  if (limits.processes > 0) {
    absl::Status set = write_text(pids_dir / "pids.max", absl::StrCat(limits.processes));
    if (!set.ok()) return set;
  }
  for (const auto& hierarchy : cgroup->dirs_) {
    int fd = ::open((hierarchy.dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", hierarchy.dir.string(), "/cgroup.procs"));
    cgroup->join_fds_.push_back(fd);
  }
  return cgroup;
}

RankCgroup::~RankCgroup() {
  for (int fd : join_fds_) ::close(fd);
  kill_all();
  for (const Hierarchy& hierarchy : dirs_) remove_when_empty(hierarchy.dir);
}

bool RankCgroup::oom_killed() const {
  if (memory_dir_.empty()) return false;
  return memory_v2_ ? keyed_value(memory_dir_ / "memory.events", "oom_kill") > 0
                    : keyed_value(memory_dir_ / "memory.oom_control", "oom_kill") > 0;
}

void RankCgroup::kill_all() const {
  for (const Hierarchy& hierarchy : dirs_) {
    if (hierarchy.v2 && write_text(hierarchy.dir / "cgroup.kill", "1").ok()) continue;
    for (absl::string_view line : absl::StrSplit(read_text(hierarchy.dir / "cgroup.procs"), '\n')) {
      pid_t pid = 0;
      if (absl::SimpleAtoi(line, &pid) && pid > 0) ::kill(pid, SIGKILL);
    }
  }
}

}  // namespace pesc
