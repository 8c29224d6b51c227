#include "executor/rank_contract.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/fault.h"
#include "common/files.h"
#include "executor/rank_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// The thesis's header exactly as pesc.md publishes it (tests/data), then a
// dump of what it parsed and of the environment, one `name=json` line each.
std::string pesc_header() { return *read_file(std::string(PESC_TEST_DATA_DIR) + "/pesc_header.py"); }

constexpr char kDump[] = R"(
import json, sys
for name, value in sorted(vars(args).items()):
    print(name + "=" + json.dumps(value, ensure_ascii=False))
count = int(os.environ["PESC_PARAMETER_COUNT"])
env = {name: os.environ.get(name) for name in [
    "PESC_RANK", "PESC_WORLD_SIZE", "PESC_APP_DIR", "PESC_OUTPUT_DIR", "PESC_CHECKPOINT_DIR",
    "PESC_MASTER_ADDR", "PESC_MASTER_PORT", "PESC_PARAMETERS", "PESC_PARAMETER_COUNT",
    "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "PBS_ARRAYID",
    "PESC_CONTRACT_TEST_INHERITED"] + ["PESC_PARAMETER_%d" % i for i in range(count)]}
print("env=" + json.dumps(env, ensure_ascii=False, sort_keys=True))
print("cwd=" + json.dumps(os.getcwd() + "/", ensure_ascii=False))
)";

// json.dumps(s, ensure_ascii=False) for the strings the tests use.
std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          out += escaped;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string json_list(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i > 0 ? ", " : "") + json_quote(values[i]);
  return out + "]";
}

std::string json_object(const std::map<std::string, std::string>& values) {
  std::string out = "{";
  for (const auto& [name, value] : values) {
    out += (out.size() > 1 ? ", " : "") + json_quote(name) + ": " + json_quote(value);
  }
  return out + "}";
}

RankContext sample_context() {
  RankContext context;
  context.app_dir = "/farm/jobs/7/app";
  context.checkpoint_dir = "/farm/jobs/7/ranks/3/checkpoint";
  context.output_dir = "/farm/jobs/7/ranks/3/output";
  context.rank = 3;
  context.world_size = 20;
  context.master_addr = "10.0.0.5";
  context.master_port = 29500;
  context.parameters = {"0.5", "two words", ""};
  return context;
}

TEST(PescFlagsTest, ExactFlagsInPescOrder) {
  EXPECT_THAT(pesc_flags(sample_context()),
              ElementsAre("--app_dir", "/farm/jobs/7/app/", "--checkpoint_dir",
                          "/farm/jobs/7/ranks/3/checkpoint", "--output_dir", "/farm/jobs/7/ranks/3/output",
                          "--rank", "3", "--world_size", "20", "--master_addr", "10.0.0.5", "--master_port",
                          "29500", "--parameters", "0.5", "two words", ""));
}

TEST(PescFlagsTest, AppDirGetsOneTrailingSlash) {
  RankContext context = sample_context();
  context.app_dir = "/farm/app/";
  EXPECT_EQ(pesc_flags(context)[1], "/farm/app/");
}

TEST(PescFlagsTest, ParametersFlagIsAlwaysGiven) {
  RankContext context = sample_context();
  context.parameters.clear();
  std::vector<std::string> flags = pesc_flags(context);
  ASSERT_FALSE(flags.empty());
  EXPECT_EQ(flags.back(), "--parameters");
}

TEST(PescEnvironmentTest, AllNamesWithTheirValues) {
  std::vector<std::pair<std::string, std::string>> environment = pesc_environment(sample_context());
  EXPECT_THAT(environment,
              ElementsAre(Pair("PESC_RANK", "3"), Pair("PESC_WORLD_SIZE", "20"),
                          Pair("PESC_APP_DIR", "/farm/jobs/7/app/"),
                          Pair("PESC_OUTPUT_DIR", "/farm/jobs/7/ranks/3/output"),
                          Pair("PESC_CHECKPOINT_DIR", "/farm/jobs/7/ranks/3/checkpoint"),
                          Pair("PESC_MASTER_ADDR", "10.0.0.5"), Pair("PESC_MASTER_PORT", "29500"),
                          Pair("PESC_PARAMETERS", "0.5 two words "), Pair("PESC_PARAMETER_COUNT", "3"),
                          Pair("PESC_PARAMETER_0", "0.5"), Pair("PESC_PARAMETER_1", "two words"),
                          Pair("PESC_PARAMETER_2", ""), Pair("RANK", "3"), Pair("WORLD_SIZE", "20"),
                          Pair("MASTER_ADDR", "10.0.0.5"), Pair("MASTER_PORT", "29500"),
                          Pair("SLURM_ARRAY_TASK_ID", "3"), Pair("SLURM_ARRAY_TASK_COUNT", "20"),
                          Pair("SLURM_ARRAY_TASK_MIN", "0"), Pair("SLURM_ARRAY_TASK_MAX", "19"),
                          Pair("PBS_ARRAYID", "3")));
}

std::optional<std::string> environment_value(const RankContext& context, std::string_view wanted) {
  for (const auto& [name, value] : pesc_environment(context)) {
    if (name == wanted) return value;
  }
  return std::nullopt;
}

TEST(PescEnvironmentTest, PescSeedIsTheJobsSeedWhenItHasOne) {
  RankContext context = sample_context();
  EXPECT_EQ(environment_value(context, "PESC_SEED"), std::nullopt);
  context.seed = 18446744073709551615ULL;
  EXPECT_EQ(environment_value(context, "PESC_SEED"), "18446744073709551615");
  context.seed = 0;
  EXPECT_EQ(environment_value(context, "PESC_SEED"), "0");
}

TEST(PescEnvironmentTest, CudaVisibleDevicesNamesTheRanksGpusOnGpuHostsOnly) {
  auto cuda_devices = [](const RankContext& context) { return environment_value(context, "CUDA_VISIBLE_DEVICES"); };
  RankContext context = sample_context();
  EXPECT_EQ(cuda_devices(context), std::nullopt) << "a host without GPUs leaves the variable alone";
  context.gpu_host = true;
  EXPECT_EQ(cuda_devices(context), "") << "no GPU for this rank: it must not take another's";
  context.gpus = {1, 3};
  EXPECT_EQ(cuda_devices(context), "1,3");
}

// Runs the PESC header under /usr/bin/python3 and returns its dump lines.
std::map<std::string, std::string> run_header(const TempDirectory& root, const RankContext& context) {
  std::filesystem::path script = root.path() / "main.py";
  EXPECT_TRUE(write_file_atomically(script, pesc_header() + kDump).ok());
  RankLaunch launch;
  launch.argv = {"/usr/bin/python3", script.string()};
  std::vector<std::string> flags = pesc_flags(context);
  launch.argv.insert(launch.argv.end(), flags.begin(), flags.end());
  launch.environment = pesc_environment(context);
  launch.working_dir = context.app_dir;
  launch.output_file = context.output_dir / "output.txt";
  absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return {};
  RankExit exit = (*process)->wait();
  absl::StatusOr<std::string> output = read_file(launch.output_file);
  EXPECT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(exit.exit_code, 0) << *output;
  std::map<std::string, std::string> lines;
  for (absl::string_view line : absl::StrSplit(*output, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> split = absl::StrSplit(line, absl::MaxSplits('=', 1));
    lines.insert(split);
  }
  return lines;
}

class PythonHeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDirectory> root = TempDirectory::create("rank_contract_test");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = std::make_unique<TempDirectory>(*std::move(root));
    context_.app_dir = root_->path() / "app dir";
    context_.checkpoint_dir = root_->path() / "checkpoint";
    context_.output_dir = root_->path() / "output";
    for (const auto& dir : {context_.app_dir, context_.checkpoint_dir, context_.output_dir}) {
      std::filesystem::create_directories(dir);
    }
    context_.rank = 7;
    context_.world_size = 12;
    context_.master_addr = "192.168.1.20";
    context_.master_port = 29501;
  }

  std::unique_ptr<TempDirectory> root_;
  RankContext context_;
};

TEST_F(PythonHeaderTest, EveryValueArrivesAsSent) {
  context_.parameters = {
      "plain", "two words",    "  padded  ",           "with \"double\" quotes", "it's", "ünïcødé ✓ 日本語",
      "",      "back\\slash",  "$HOME `id` *.txt ; |", "tab\tnew\nline",         "a=b",  "-5",
      "-1.5",  "-x with space"};
  ::setenv("PESC_CONTRACT_TEST_INHERITED", "from the worker", 1);
  std::map<std::string, std::string> got = run_header(*root_, context_);
  ::unsetenv("PESC_CONTRACT_TEST_INHERITED");

  const std::string app_dir = context_.app_dir.string() + "/";
  EXPECT_EQ(got["app_dir"], json_quote(app_dir));
  EXPECT_EQ(got["checkpoint_dir"], json_quote(context_.checkpoint_dir.string()));
  EXPECT_EQ(got["output_dir"], json_quote(context_.output_dir.string()));
  EXPECT_EQ(got["rank"], "7");
  EXPECT_EQ(got["world_size"], "12");
  EXPECT_EQ(got["master_addr"], "\"192.168.1.20\"");
  EXPECT_EQ(got["master_port"], "29501");
  EXPECT_EQ(got["parameters"], json_list(context_.parameters));
  EXPECT_EQ(got["cwd"], json_quote(app_dir));

  std::map<std::string, std::string> env = {
      {"PESC_RANK", "7"},
      {"PESC_WORLD_SIZE", "12"},
      {"PESC_APP_DIR", app_dir},
      {"PESC_OUTPUT_DIR", context_.output_dir.string()},
      {"PESC_CHECKPOINT_DIR", context_.checkpoint_dir.string()},
      {"PESC_MASTER_ADDR", "192.168.1.20"},
      {"PESC_MASTER_PORT", "29501"},
      {"PESC_PARAMETER_COUNT", std::to_string(context_.parameters.size())},
      {"RANK", "7"},
      {"WORLD_SIZE", "12"},
      {"MASTER_ADDR", "192.168.1.20"},
      {"MASTER_PORT", "29501"},
      {"SLURM_ARRAY_TASK_ID", "7"},
      {"SLURM_ARRAY_TASK_COUNT", "12"},
      {"SLURM_ARRAY_TASK_MIN", "0"},
      {"SLURM_ARRAY_TASK_MAX", "11"},
      {"PBS_ARRAYID", "7"},
      {"PESC_CONTRACT_TEST_INHERITED", "from the worker"},
  };
  std::string joined;
  for (size_t i = 0; i < context_.parameters.size(); ++i) {
    env["PESC_PARAMETER_" + std::to_string(i)] = context_.parameters[i];
    joined += (i > 0 ? " " : "") + context_.parameters[i];
  }
  env["PESC_PARAMETERS"] = joined;
  EXPECT_EQ(got["env"], json_object(env));
}

TEST_F(PythonHeaderTest, NoParametersGiveAnEmptyList) {
  std::map<std::string, std::string> got = run_header(*root_, context_);
  EXPECT_EQ(got["parameters"], "[]");
  EXPECT_EQ(got["rank"], "7");
}

TEST(PescEnvironmentTest, LargeParametersTravelInArgvOnly) {
  RankContext context;
  context.parameters.assign(100, std::string(10 * 1024, 'p'));
  std::vector<std::pair<std::string, std::string>> environment = pesc_environment(context);
  for (const auto& [name, value] : environment) {
    EXPECT_TRUE(name.rfind("PESC_PARAMETER_", 0) != 0 || name == "PESC_PARAMETER_COUNT") << name;
    EXPECT_NE(name, "PESC_PARAMETERS");
    if (name == "PESC_PARAMETER_COUNT") {
      EXPECT_EQ(value, "100");
    }
  }
  EXPECT_EQ(pesc_flags(context).size(), 15u + 100u) << "argv still carries every parameter";
}

TEST(CheckParametersFitTest, ParametersWithinTheKernelsLimitsFitAndOthersAreTheJobsFault) {
  EXPECT_TRUE(check_parameters_fit(std::vector<std::string>(100, std::string(10 * 1024, 'p'))).ok());
  absl::Status too_large = check_parameters_fit({std::string(200 * 1024, 'p')});
  EXPECT_EQ(too_large.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(is_job_fault(too_large));
  const size_t arg_max = static_cast<size_t>(::sysconf(_SC_ARG_MAX));
  absl::Status too_many =
      check_parameters_fit(std::vector<std::string>(arg_max / (64 * 1024) + 1, std::string(64 * 1024, 'p')));
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.message().find("--shared"), absl::string_view::npos) << too_many.message();
}

}  // namespace
}  // namespace pesc
