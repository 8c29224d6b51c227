#include "executor/sandbox.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/rank_process.h"

namespace pesc {
namespace fs = std::filesystem;
namespace {

// The system a rank may read: programs, libraries, interpreters and their
// packages, configuration. Homes, /var, /srv, /mnt, /media and /root stay
// out of sight, and with them every work or state dir kept there.
constexpr const char* kSystemDirs[] = {"/usr", "/etc", "/opt"};
// On merged-/usr systems these are symlinks into /usr, and stay so.
constexpr const char* kSystemLinks[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};

std::optional<Credentials> lookup_user(const std::string& name) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return Credentials{found->pw_uid, found->pw_gid, name};
}

absl::StatusOr<fs::path> find_program(const std::string& name, std::initializer_list<const char*> dirs) {
  for (const char* dir : dirs) {
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, " is not installed"));
}

// Runs a helper program to its end with its output discarded.
absl::Status run_to_end(std::vector<std::string> argv, const std::optional<Credentials>& run_as,
                        const fs::path& output_file) {
  RankLaunch launch;
  launch.argv = std::move(argv);
  launch.output_file = output_file;
  launch.run_as = run_as;
  launch.working_dir = "/";
  PESC_ASSIGN_OR_RETURN(std::unique_ptr<RankProcess> process, RankProcess::start(launch));
  RankExit exit = process->wait();
  if (exit.exit_code != 0) {
    std::string said;
    if (auto text = read_file(output_file); text.ok()) said = absl::StrCat(": ", *text);
    return absl::FailedPreconditionError(absl::StrCat(launch.argv[0], " exited ", exit.exit_code, said));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Credentials> ensure_user(const std::string& name, bool create) {
  if (std::optional<Credentials> found = lookup_user(name)) return *found;
  if (!create) {
    return absl::NotFoundError(absl::StrCat("there is no user \"", name, "\" to run ranks as"));
  }
  PESC_ASSIGN_OR_RETURN(fs::path useradd, find_program("useradd", {"/usr/sbin", "/sbin", "/usr/bin"}));
  PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-useradd-"));
  absl::Status added =
      run_to_end({useradd.string(), "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                  "--shell", "/usr/sbin/nologin", "--comment", "pesc ranks", name},
                 std::nullopt, scratch.path() / "useradd.txt");
  if (!added.ok()) {
    return absl::Status(added.code(),
                        absl::StrCat("cannot create the user \"", name, "\" that ranks run as: ", added.message()));
  }
  if (std::optional<Credentials> made = lookup_user(name)) return *made;
  return absl::InternalError(absl::StrCat("useradd made no user \"", name, "\""));
}

std::optional<fs::path> find_bwrap() {
  auto found = find_program("bwrap", {"/usr/bin", "/usr/local/bin", "/bin"});
  if (!found.ok()) return std::nullopt;
  return *found;
}

absl::Status probe_bwrap(const fs::path& bwrap, const std::optional<Credentials>& run_as) {
  PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-bwrap-probe-"));
  Sandbox sandbox{.bwrap = bwrap};
  return run_to_end(sandboxed_argv(sandbox, "/", {"/bin/true"}), run_as, scratch.path() / "bwrap.txt");
}

std::vector<fs::path> nvidia_devices(const std::vector<int>& gpus) {
  if (gpus.empty()) return {};
  std::vector<fs::path> devices;
  for (int gpu : gpus) devices.push_back(absl::StrCat("/dev/nvidia", gpu));
  for (const char* shared : {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}) {
    devices.emplace_back(shared);
  }
  std::error_code error;
  std::erase_if(devices, [&](const fs::path& device) { return !fs::exists(device, error); });
  return devices;
}

std::vector<std::string> sandboxed_argv(const Sandbox& sandbox, const fs::path& working_dir,
                                        const std::vector<std::string>& argv) {
  std::vector<std::string> words = {sandbox.bwrap.string(), "--die-with-parent", "--unshare-all"};
  if (sandbox.network) words.push_back("--share-net");
  if (sandbox.command_is_init) words.push_back("--as-pid-1");
  for (const char* dir : kSystemDirs) {
    words.insert(words.end(), {"--ro-bind-try", dir, dir});
  }
  for (const char* link : kSystemLinks) {
    std::error_code error;
    if (fs::is_symlink(link, error)) {
      words.insert(words.end(), {"--symlink", fs::read_symlink(link, error).string(), link});
    } else {
      words.insert(words.end(), {"--ro-bind-try", link, link});
    }
  }
  std::vector<std::string> read_only_below_tmp;
  for (const fs::path& path : sandbox.read_only) {
    if (absl::StartsWith(path.string(), "/tmp/")) {
      read_only_below_tmp.push_back(path.string());
    } else {
      words.insert(words.end(), {"--ro-bind-try", path.string(), path.string()});
    }
  }
  std::vector<std::string> hidden_dirs;
  for (const fs::path& path : sandbox.hidden) {
    std::error_code error;
    if (fs::is_directory(path, error)) {
      words.insert(words.end(), {"--tmpfs", path.string()});
      // One below /tmp is covered by the private /tmp, which stays writable.
      if (!absl::StartsWith(path.string(), "/tmp/")) hidden_dirs.push_back(path.string());
    } else if (fs::exists(path, error)) {
      words.insert(words.end(), {"--ro-bind", "/dev/null", path.string()});
    }
  }
  // Mounted after the system, so a work dir below /tmp is bound into the
  // private /tmp rather than hidden by it.
  words.insert(words.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"});
  // What is shown from below /tmp (the slot launcher of a build there, say)
  // goes into the private /tmp, which would hide it if bound before.
  for (const std::string& path : read_only_below_tmp) words.insert(words.end(), {"--ro-bind-try", path, path});
  for (const fs::path& device : sandbox.devices) {
    words.insert(words.end(), {"--dev-bind-try", device.string(), device.string()});
  }
  for (const fs::path& path : sandbox.writable) {
    words.insert(words.end(), {"--bind", path.string(), path.string()});
  }
  // bubblewrap's root, /dev and the hidden dirs are tmpfs the rank's user
  // could write to: read-only, like the system (the mounts below them keep
  // their own modes).
  for (const std::string& tmpfs : hidden_dirs) words.insert(words.end(), {"--remount-ro", tmpfs});
  words.insert(words.end(), {"--remount-ro", "/dev", "--remount-ro", "/"});
  words.insert(words.end(), {"--chdir", working_dir.string(), "--"});
  words.insert(words.end(), argv.begin(), argv.end());
  return words;
}

}  // namespace pesc
