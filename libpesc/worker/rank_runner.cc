#include "worker/rank_runner.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "archive/archive.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "executor/rank_contract.h"
#include "transport/transport.h"

namespace pesc {
namespace fs = std::filesystem;

namespace {

constexpr const char* kOutputFile = "output.txt";

RankContext context_for(const v1::Assignment& assignment, const fs::path& run_dir) {
  RankContext context;
  context.app_dir = run_dir / "app";
  context.checkpoint_dir = run_dir / "checkpoint";
  context.output_dir = run_dir / "output";
  context.rank = assignment.rank();
  context.world_size = assignment.world_size();
  context.master_addr = assignment.master_addr();
  context.master_port = assignment.master_port();
  context.parameters.assign(assignment.parameters().begin(), assignment.parameters().end());
  return context;
}

void append_note(const fs::path& output_file, std::string_view note) {
  std::ofstream out(output_file, std::ios::binary | std::ios::app);
  out << "pesc: " << note << "\n";
}

}  // namespace

fs::path RankRunner::slot_dir(int slot) const { return runs_dir_ / absl::StrCat("slot-", slot); }

void RankRunner::reset_slot(int slot) {
  const fs::path run_dir = slot_dir(slot);
  std::error_code error;
  for (const char* part : {"app", "output", "checkpoint"}) {
    for (auto it = fs::directory_iterator(run_dir / part, error); !error && it != fs::end(it); it.increment(error)) {
      fs::remove_all(it->path(), error);
      if (error) break;
    }
    if (error) break;
  }
  if (error) (void)remove_tree(run_dir);  // a rank left something odd: start the slot afresh
}

v1::RankResult RankRunner::run(const v1::Assignment& assignment, int slot, v1::Blobs::Stub& blobs,
                               const std::function<void(RankProcess*)>& on_start) {
  const fs::path run_dir = slot_dir(slot);
  v1::RankResult result;
  result.set_rank(assignment.rank());
  result.set_attempt_id(assignment.attempt_id());
  result.set_start_unix_ms(now_unix_ms());

  auto exit = execute(assignment, run_dir, blobs, on_start);
  if (exit.ok()) {
    result.set_exit_code(exit->exit_code);
    result.set_signal(exit->signal);
    result.set_start_unix_ms(exit->start_unix_ms);
    result.set_end_unix_ms(exit->end_unix_ms);
    result.set_cpu_ms(exit->cpu_ms);
    result.set_max_rss_kb(exit->max_rss_kb);
    result.set_state(exit->exit_code == 0 && exit->signal == 0 ? v1::RANK_STATE_SUCCEEDED : v1::RANK_STATE_FAILED);
  } else {
    // The rank never ran: say why where the user will look, in its output.
    result.set_exit_code(127);
    result.set_end_unix_ms(now_unix_ms());
    result.set_state(v1::RANK_STATE_FAILED);
    result.set_error(std::string(exit.status().message()));
    append_note(run_dir / "output" / kOutputFile, std::string(exit.status().message()));
  }
  if (auto status = collect_output(run_dir / "output", blobs, result); !status.ok()) {
    result.set_state(v1::RANK_STATE_FAILED);
    result.set_error(absl::StrCat("cannot send the output back: ", status.message()));
  }
  return result;
}

absl::StatusOr<RankExit> RankRunner::execute(const v1::Assignment& assignment, const fs::path& run_dir,
                                             v1::Blobs::Stub& blobs,
                                             const std::function<void(RankProcess*)>& on_start) {
  RankContext context = context_for(assignment, run_dir);
  std::error_code error;
  fs::create_directories(context.output_dir, error);
  fs::create_directories(context.checkpoint_dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", run_dir.string(), ": ", error.message()));

  PESC_ASSIGN_OR_RETURN(Domain domain, parse_domain(assignment.domain()));
  PESC_ASSIGN_OR_RETURN(fs::path process_dir, cache_.materialize(assignment, blobs));
  PESC_RETURN_IF_ERROR(ProcessCache::populate(process_dir, context.app_dir));
  fs::path entry = context.app_dir / assignment.entry();
  if (!fs::exists(entry, error)) {
    return absl::NotFoundError(absl::StrCat("the entry point ", assignment.entry(), " is not in the process"));
  }
  PESC_ASSIGN_OR_RETURN(std::vector<std::string> argv, interpreters_.command_for(domain, entry.string()));

  RankLaunch launch;
  launch.argv = std::move(argv);
  for (std::string& flag : pesc_flags(context)) launch.argv.push_back(std::move(flag));
  launch.environment = pesc_environment(context);
  launch.working_dir = context.app_dir;
  launch.output_file = context.output_dir / kOutputFile;
  PESC_ASSIGN_OR_RETURN(std::unique_ptr<RankProcess> process, RankProcess::start(launch));
  on_start(process.get());
  RankExit exit = process->wait();
  on_start(nullptr);
  return exit;
}

absl::Status RankRunner::collect_output(const fs::path& output_dir, v1::Blobs::Stub& blobs, v1::RankResult& result) {
  std::error_code error;
  std::string text;
  if (fs::exists(output_dir / kOutputFile, error)) {
    PESC_ASSIGN_OR_RETURN(text, read_file(output_dir / kOutputFile));
  }
  PESC_ASSIGN_OR_RETURN(*result.mutable_output_txt(), make_payload(blobs, std::move(text)));
  PESC_ASSIGN_OR_RETURN(bool only_output_txt, archive::directory_is_empty_except(output_dir, {kOutputFile}));
  if (only_output_txt) return absl::OkStatus();
  fs::path tar = output_dir.parent_path() / "output.tar";
  PESC_RETURN_IF_ERROR(archive::pack_directory(output_dir, tar, {kOutputFile}));
  auto uploaded = upload_file(blobs, tar);
  std::error_code ignored;
  fs::remove(tar, ignored);
  if (!uploaded.ok()) return uploaded.status();
  *result.mutable_files() = *std::move(uploaded);
  return absl::OkStatus();
}

}  // namespace pesc
