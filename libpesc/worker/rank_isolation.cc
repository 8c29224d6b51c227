#include "worker/rank_isolation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

// bubblewrap's own two processes (its monitor and the namespace's init)
// count against a sandboxed rank's process limit; the job's number is the
// rank's own.
constexpr int kSandboxProcesses = 2;

// Links are changed themselves, never what they point at.
void give(const fs::path& path, const Credentials& user) { (void)::lchown(path.c_str(), user.uid, user.gid); }

enum class Give { kEverything, kDirectoriesOnly };

// A checkpoint restored (or an output left) by the worker belongs to the
// rank, which must be able to rewrite it. Of an app_dir only the
// directories: its files are hard links into the worker's cache, which the
// rank may read but must not change.
void give_tree(const fs::path& dir, const Credentials& user, Give what) {
  give(dir, user);
  ::chmod(dir.c_str(), 0700);
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (what == Give::kEverything || (it->is_directory(error) && !it->is_symlink(error))) give(it->path(), user);
  }
}

std::string mebibytes(int64_t bytes) { return absl::StrFormat("%.4g MiB", static_cast<double>(bytes) / (1 << 20)); }

bool is_system_path(const fs::path& path) {
  for (const char* prefix : {"/usr/", "/bin/", "/sbin/", "/lib", "/etc/", "/opt/"}) {
    if (absl::StartsWith(path.string(), prefix)) return true;
  }
  return false;
}

// Does `info`'s mode grant `user` the permission `bit` (1: search, 4:
// read)? The worker is root, so access() would only answer for root.
bool permits(const struct stat& info, const Credentials& user, mode_t bit) {
  if (info.st_uid == user.uid) return (info.st_mode & (bit << 6)) != 0;
  if (info.st_gid == user.gid) return (info.st_mode & (bit << 3)) != 0;
  return (info.st_mode & bit) != 0;
}

// The rank's program must be one its user can reach: an interpreter found
// on root's PATH (a pyenv shim under /root) is not.
absl::Status check_reachable(const fs::path& program, const Credentials& user) {
  for (fs::path dir = program.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat info;
    if (::stat(dir.c_str(), &info) == 0 && !permits(info, user, 1)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s cannot run as user %s, who runs ranks: %s is mode %04o; install it where others may reach it or "
          "name one with pesc-worker --interpreter NAME=/usr/bin/...",
          program.string(), user.name, dir.string(), info.st_mode & 07777));
    }
    if (dir == dir.root_path()) break;
  }
  return absl::OkStatus();
}

// pesc-rank-launcher is installed beside pesc-worker.
std::optional<fs::path> find_slot_launcher() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return std::nullopt;
  fs::path launcher = self.parent_path() / "pesc-rank-launcher";
  if (::access(launcher.c_str(), X_OK) != 0) return std::nullopt;
  return launcher;
}

}  // namespace

std::optional<fs::path> RankIsolation::slot_launcher_for(const RankLaunch& launch) const {
  if (!launch.sandbox || launch.cgroups || launch.limits.memory_bytes > 0 || launch.limits.processes > 0 ||
      !launch.inherited_fds.empty()) {
    return std::nullopt;
  }
  return slot_launcher_;
}

absl::Status RankIsolation::check_runnable(const fs::path& program) const {
  return run_as_ ? check_reachable(program, *run_as_) : absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RankIsolation>> RankIsolation::create(const IsolationOptions& options) {
  std::shared_ptr<RankIsolation> isolation(new RankIsolation);
  for (const fs::path& path : options.hidden) isolation->hide(path);
  if (::geteuid() == 0 && !options.run_as.empty() && options.run_as != "root") {
    auto user = ensure_user(options.run_as, /*create=*/true);
    if (!user.ok()) return user.status();
    isolation->run_as_ = *user;
  }
  if (!options.sandbox) {
    isolation->sandbox_state_ = "no sandbox (--no-sandbox)";
  } else if (std::optional<fs::path> bwrap = find_bwrap(); !bwrap) {
    isolation->sandbox_state_ = "no sandbox (bubblewrap is not installed: apt-get install bubblewrap)";
  } else if (absl::Status works = probe_bwrap(*bwrap, isolation->run_as_); !works.ok()) {
    isolation->sandbox_state_ = absl::StrCat("no sandbox (bubblewrap does not work here: ", works.message(), ")");
  } else {
    isolation->bwrap_ = *bwrap;
    isolation->slot_launcher_ = find_slot_launcher();
  }
  (void)isolation->cgroups();
  return isolation;
}

std::shared_ptr<RankIsolation> RankIsolation::limits_only() {
  std::shared_ptr<RankIsolation> isolation(new RankIsolation);
  isolation->sandbox_state_ = "no sandbox";
  return isolation;
}

std::shared_ptr<CgroupTree> RankIsolation::cgroups() const {
  std::call_once(cgroups_opened_, [this] {
    auto tree = CgroupTree::open();
    if (tree.ok()) {
      cgroups_ = *tree;
      cgroups_state_ = absl::StrCat("limits by ", cgroups_->describe(), " and rlimits");
    } else {
      cgroups_state_ = absl::StrCat("limits by rlimits and watches only (", tree.status().message(), ")");
    }
  });
  return cgroups_;
}

std::string RankIsolation::describe() const {
  std::string who = run_as_ ? absl::StrCat("ranks run as user ", run_as_->name, " (uid ", run_as_->uid, ")")
                            : absl::StrCat("ranks run as this worker's user (uid ", ::geteuid(), ")");
  std::string where = bwrap_ ? absl::StrCat("in bubblewrap (", bwrap_->string(),
                                            "): read-only system, private /tmp, no network unless a job asks",
                                            slot_launcher_ ? ", one sandbox per slot kept between ranks" : "")
                             : sandbox_state_;
  (void)cgroups();
  return absl::StrCat(who, "; ", where, "; ", cgroups_state_);
}

void RankIsolation::hide(const fs::path& path) {
  if (path.empty()) return;
  std::error_code error;
  absl::MutexLock lock(&hidden_mutex_);
  // Under the name it was given and where it really is: a link may lead
  // into a dir the sandbox shows.
  for (const fs::path& name : {fs::absolute(path, error), fs::weakly_canonical(path, error)}) {
    if (!name.empty() && std::find(hidden_.begin(), hidden_.end(), name) == hidden_.end()) hidden_.push_back(name);
  }
}

void RankIsolation::hand_over(const fs::path& dir) const {
  if (run_as_) give_tree(dir, *run_as_, Give::kEverything);
}

absl::Status RankIsolation::apply(const JobRun& job, const RankContext& context, RankLaunch& launch,
                                  bool app_dir_ready) {
  launch.limits = job.limits;
  // RLIMIT_CPU would count a warm runner's whole life, not one rank.
  if (job.warm_runner) launch.limits.cpu_ms = 0;
  launch.output_dir = context.output_dir;
  if (launch.limits.memory_bytes > 0 || launch.limits.processes > 0) launch.cgroups = cgroups();
  if (run_as_) {
    // The rank dirs go back to the user for every rank: a rank of another
    // job may have left them a mode its user cannot write to.
    give_tree(context.output_dir, *run_as_, Give::kEverything);
    give_tree(context.checkpoint_dir, *run_as_, Give::kEverything);
    for (const fs::path& spare : context.spare_dirs) give_tree(spare, *run_as_, Give::kEverything);
    if (!app_dir_ready) {
      give_tree(context.app_dir, *run_as_, Give::kDirectoriesOnly);
      if (absl::Status reachable = check_reachable(launch.argv.at(0), *run_as_); !reachable.ok()) return reachable;
    }
    launch.run_as = run_as_;
    launch.environment.emplace_back("HOME", context.app_dir.string());
    launch.environment.emplace_back("USER", run_as_->name);
    launch.environment.emplace_back("LOGNAME", run_as_->name);
  }
  if (bwrap_) {
    absl::MutexLock lock(&hidden_mutex_);
    Sandbox sandbox{.bwrap = *bwrap_,
                    .writable = {context.app_dir, context.output_dir, context.checkpoint_dir},
                    .hidden = hidden_,
                    .devices = nvidia_devices(context.gpus),
                    .network = job.network};
    sandbox.writable.insert(sandbox.writable.end(), context.spare_dirs.begin(), context.spare_dirs.end());
    // An interpreter installed outside the system dirs must still be seen.
    const fs::path program = launch.argv.at(0);
    if (!is_system_path(program) && !absl::StartsWith(program.string(), context.app_dir.string())) {
      sandbox.read_only.push_back(program.parent_path());
    }
    launch.sandbox = std::move(sandbox);
    if (launch.limits.processes > 0) launch.limits.processes += kSandboxProcesses;
  }
  return absl::OkStatus();
}

absl::Status RankIsolation::protect_work_dir(const fs::path& relative_work_dir) const {
  if (!run_as_) return absl::OkStatus();
  std::error_code error;
  const fs::path work_dir = fs::absolute(relative_work_dir, error);
  fs::create_directories(work_dir / "cache", error);
  ::chmod(work_dir.c_str(), 0711);
  for (fs::path dir = work_dir.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat info;
    if (::stat(dir.c_str(), &info) == 0 && (info.st_mode & S_IXOTH) == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "ranks run as user %s but cannot reach the work dir %s: %s is mode %04o; pick a --work-dir below "
          "directories others may enter (default /var/tmp/pesc-worker)",
          run_as_->name, work_dir.string(), dir.string(), info.st_mode & 07777));
    }
    if (dir == dir.root_path()) break;
  }
  for (auto it = fs::directory_iterator(work_dir, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    if (it->path().filename() == "runs") continue;
    struct stat info;
    if (::lstat(it->path().c_str(), &info) == 0 && !S_ISLNK(info.st_mode)) {
      ::chmod(it->path().c_str(), info.st_mode & 0700);
    }
  }
  return absl::OkStatus();
}

std::string RankIsolation::limit_note(const ResourceLimits& limits, const std::string& limit) {
  if (limit == "memory") {
    return absl::StrCat("killed: the rank went over the job's memory limit of ", mebibytes(limits.memory_bytes));
  }
  if (limit == "cpu") {
    return absl::StrCat("killed: the rank used up the job's CPU time limit of ", limits.cpu_ms / 1000.0, " s");
  }
  if (limit == "output") {
    return absl::StrCat("killed: output_dir grew past the job's output limit of ", mebibytes(limits.output_bytes));
  }
  return absl::StrCat("killed for going over the job's ", limit, " limit");
}

}  // namespace pesc
