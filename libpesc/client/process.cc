#include "client/process.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "archive/archive.h"
#include "common/status_macros.h"

namespace pesc {
namespace fs = std::filesystem;

bool looks_like_archive(const fs::path& path) {
  const std::string name = path.filename().string();
  for (const char* suffix : {".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2"}) {
    if (absl::EndsWith(name, suffix)) return true;
  }
  return false;
}

namespace {

absl::Status check_entry_listed(const std::vector<std::string>& files, const std::string& entry,
                                const fs::path& process) {
  if (std::find(files.begin(), files.end(), entry) != files.end()) return absl::OkStatus();
  std::vector<std::string> shown(files.begin(), files.begin() + std::min<size_t>(files.size(), 10));
  return absl::InvalidArgumentError(absl::StrCat("the entry point \"", entry, "\" is not in ", process.string(),
                                                 "; it holds: ", absl::StrJoin(shown, ", "),
                                                 files.size() > shown.size() ? ", ..." : ""));
}

absl::Status require_entry(const std::string& entry, const fs::path& process) {
  if (!entry.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(process.string(),
                                                 " holds several files: name the one to run with --entry "
                                                 "(MapOptions::entry, entry=)"));
}

}  // namespace

absl::StatusOr<PreparedProcess> prepare_process(const fs::path& process, const std::string& entry) {
  std::error_code error;
  auto status = fs::status(process, error);
  if (error || !fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat("the process \"", process.string(), "\" does not exist"));
  }
  PreparedProcess prepared;
  if (fs::is_directory(status)) {
    PESC_RETURN_IF_ERROR(require_entry(entry, process));
    PESC_ASSIGN_OR_RETURN(TempDirectory scratch, TempDirectory::create("pesc-process-"));
    prepared.upload = scratch.path() / "process.tar";
    prepared.scratch = std::move(scratch);
    PESC_RETURN_IF_ERROR(archive::pack_directory(process, prepared.upload));
  } else if (looks_like_archive(process)) {
    PESC_RETURN_IF_ERROR(require_entry(entry, process));
    prepared.upload = process;
  } else {
    if (!fs::is_regular_file(status)) {
      return absl::InvalidArgumentError(absl::StrCat(process.string(), " is neither a file nor a directory"));
    }
    const std::string name = process.filename().string();
    if (!entry.empty() && entry != name) {
      return absl::InvalidArgumentError(
          absl::StrCat("a one-file process is its own entry point; drop the entry \"", entry, "\""));
    }
    prepared.kind = v1::PROCESS_KIND_FILE;
    prepared.upload = process;
    prepared.entry = name;
    return prepared;
  }
  PESC_ASSIGN_OR_RETURN(std::vector<std::string> files, archive::list_files(prepared.upload));
  PESC_RETURN_IF_ERROR(check_entry_listed(files, entry, process));
  prepared.kind = v1::PROCESS_KIND_ARCHIVE;
  prepared.entry = entry;
  return prepared;
}

}  // namespace pesc
