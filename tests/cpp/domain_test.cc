#include "executor/domain.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> words_of(std::string_view text) {
  absl::StatusOr<Domain> domain = parse_domain(text);
  EXPECT_TRUE(domain.ok()) << domain.status();
  return domain.ok() ? domain->words : std::vector<std::string>{};
}

// Sets PATH for one test and puts it back afterwards.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    const char* old = std::getenv("PATH");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() {
    if (had_) {
      ::setenv("PATH", old_.c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }

 private:
  bool had_ = false;
  std::string old_;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "domain_test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

  std::string make_program(const std::string& name, mode_t mode = 0755) {
    std::filesystem::path file = path_ / name;
    std::ofstream(file) << "#!/bin/sh\nexit 0\n";
    ::chmod(file.c_str(), mode);
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

TEST(ParseDomainTest, BuiltinsHaveTheirCommands) {
  EXPECT_THAT(words_of("native"), ElementsAre("{entry}"));
  EXPECT_THAT(words_of("python"), ElementsAre("python3", "{entry}"));
  EXPECT_THAT(words_of("R"), ElementsAre("Rscript", "{entry}"));
  EXPECT_THAT(words_of("shell"), ElementsAre("sh", "{entry}"));
  EXPECT_THAT(words_of("java"), ElementsAre("java", "-jar", "{entry}"));
  EXPECT_EQ(parse_domain("python")->name, "python");
}

TEST(ParseDomainTest, UnknownNameExplainsTheChoices) {
  absl::StatusOr<Domain> domain = parse_domain("pyhton");
  ASSERT_FALSE(domain.ok());
  EXPECT_EQ(domain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domain.status().message(),
            "unknown domain \"pyhton\": use one of native, python, R, shell, java, or a command "
            "template containing {entry} such as \"julia {entry}\"");
}

TEST(ParseDomainTest, NamesAreExactButCaseMistakesGetAHint) {
  absl::StatusOr<Domain> lower_r = parse_domain("r");
  ASSERT_FALSE(lower_r.ok());
  EXPECT_THAT(lower_r.status().message(), HasSubstr("did you mean \"R\"?"));
  absl::StatusOr<Domain> upper_python = parse_domain("Python");
  ASSERT_FALSE(upper_python.ok());
  EXPECT_THAT(upper_python.status().message(), HasSubstr("did you mean \"python\"?"));
  EXPECT_FALSE(parse_domain("").ok());
  EXPECT_FALSE(parse_domain(" python").ok());
}

TEST(ParseDomainTest, TemplatesSplitLikeAShell) {
  absl::StatusOr<Domain> domain = parse_domain("julia --threads=4 {entry}");
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(domain->name, "julia --threads=4 {entry}");
  EXPECT_THAT(domain->words, ElementsAre("julia", "--threads=4", "{entry}"));

  EXPECT_THAT(words_of("  a\t b \n {entry}  "), ElementsAre("a", "b", "{entry}"));
  EXPECT_THAT(words_of("prog 'two words' \"and three words\" {entry}"),
              ElementsAre("prog", "two words", "and three words", "{entry}"));
  EXPECT_THAT(words_of("prog 'it\"s' \"it's\" {entry}"), ElementsAre("prog", "it\"s", "it's", "{entry}"));
  EXPECT_THAT(words_of("prog a\\ b \\' {entry}"), ElementsAre("prog", "a b", "'", "{entry}"));
  // Inside double quotes a backslash escapes only \ " $ ` and newline.
  EXPECT_THAT(words_of(R"(prog "a\"b" "c\\d" "e\f" {entry})"),
              ElementsAre("prog", "a\"b", "c\\d", "e\\f", "{entry}"));
  EXPECT_THAT(words_of("prog '' \"\" {entry}"), ElementsAre("prog", "", "", "{entry}"));
  EXPECT_THAT(words_of("prog x'y'\"z\" --file={entry}"), ElementsAre("prog", "xyz", "--file={entry}"));
  EXPECT_THAT(words_of("prog '$HOME' {entry}"), ElementsAre("prog", "$HOME", "{entry}"));
}

TEST(ParseDomainTest, BrokenTemplatesAreInvalid) {
  for (const char* text :
       {"prog 'open {entry}", "prog \"open {entry}", "prog {entry} \\", "prog '{entry}\""}) {
    absl::StatusOr<Domain> domain = parse_domain(text);
    ASSERT_FALSE(domain.ok()) << text;
    EXPECT_EQ(domain.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_THAT(parse_domain("prog 'x {entry}").status().message(), HasSubstr("unbalanced single quote"));
}

// Found by tests/fuzz/domain_fuzz: a quoted empty word as the program.
TEST(ParseDomainTest, TemplatesMustStartWithAProgram) {
  for (const char* text : {"'' {entry}", "'''' ? tr{entry}yt}", "\"\" {entry}"}) {
    absl::StatusOr<Domain> domain = parse_domain(text);
    ASSERT_FALSE(domain.ok()) << text;
    EXPECT_THAT(domain.status().message(), HasSubstr("must start with the program")) << text;
  }
}

TEST(InterpreterTableTest, NativeRunsTheEntryItself) {
  InterpreterTable table;
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("native"), "/app/run");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_THAT(*argv, ElementsAre("/app/run"));
}

TEST(InterpreterTableTest, EntryMustBeAbsolute) {
  InterpreterTable table;
  EXPECT_EQ(table.command_for(*parse_domain("native"), "run.sh").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(InterpreterTableTest, ProgramIsFoundOnPath) {
  TempDir first;
  TempDir second;
  std::string tool = second.make_program("mytool");
  first.make_program("mytool", 0644);  // not executable: skipped
  ScopedPath path("relative/dir::" + first.path().string() + ":" + second.path().string());
  InterpreterTable table;
  absl::StatusOr<std::vector<std::string>> argv =
      table.command_for(*parse_domain("mytool -x --file={entry} {entry}.cfg"), "/app/main.jl");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_THAT(*argv, ElementsAre(tool, "-x", "--file=/app/main.jl", "/app/main.jl.cfg"));
}

TEST(InterpreterTableTest, ResolvedProgramsAreRemembered) {
  TempDir dir;
  std::string tool = dir.make_program("cachedtool");
  InterpreterTable table;
  {
    ScopedPath path(dir.path().string());
    ASSERT_TRUE(table.command_for(*parse_domain("cachedtool {entry}"), "/e").ok());
  }
  ScopedPath empty("/nonexistent");
  absl::StatusOr<std::vector<std::string>> argv =
      table.command_for(*parse_domain("cachedtool {entry}"), "/e");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_EQ((*argv)[0], tool);
}

TEST(InterpreterTableTest, MissingProgramNamesItAndTheFix) {
  ScopedPath path("/nonexistent");
  InterpreterTable table;
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("python"), "/app/x.py");
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(argv.status().message(), HasSubstr("\"python3\""));
  EXPECT_THAT(argv.status().message(), HasSubstr("domain \"python\""));
  EXPECT_THAT(argv.status().message(),
              HasSubstr("install it or pass `pesc-worker --interpreter python=/abs/path`"));
}

TEST(InterpreterTableTest, FailuresAreNotRemembered) {
  TempDir dir;
  InterpreterTable table;
  ScopedPath path(dir.path().string());
  EXPECT_FALSE(table.command_for(*parse_domain("latertool {entry}"), "/e").ok());
  std::string tool = dir.make_program("latertool");
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("latertool {entry}"), "/e");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_EQ((*argv)[0], tool);
}

TEST(InterpreterTableTest, OverrideByDomainName) {
  TempDir dir;
  std::string python = dir.make_program("my-python");
  ScopedPath path("/nonexistent");
  InterpreterTable table(std::map<std::string, std::string>{{"python", python}});
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("python"), "/app/x.py");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_THAT(*argv, ElementsAre(python, "/app/x.py"));
}

TEST(InterpreterTableTest, OverrideByProgramName) {
  TempDir dir;
  std::string python = dir.make_program("python3.99");
  ScopedPath path("/nonexistent");
  InterpreterTable table(std::map<std::string, std::string>{{"python3", python}});
  absl::StatusOr<std::vector<std::string>> argv =
      table.command_for(*parse_domain("python3 -u {entry}"), "/a.py");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_THAT(*argv, ElementsAre(python, "-u", "/a.py"));
}

TEST(InterpreterTableTest, OverrideToAMissingFileFails) {
  InterpreterTable table(std::map<std::string, std::string>{{"R", "/nonexistent/Rscript"}});
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("R"), "/a.R");
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(argv.status().message(), HasSubstr("/nonexistent/Rscript"));
}

TEST(InterpreterTableTest, AbsoluteProgramInTemplateIsKept) {
  InterpreterTable table;
  absl::StatusOr<std::vector<std::string>> argv =
      table.command_for(*parse_domain("/opt/julia/bin/julia {entry}"), "/a.jl");
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_THAT(*argv, ElementsAre("/opt/julia/bin/julia", "/a.jl"));
}

TEST(InterpreterTableTest, RealShellResolves) {
  InterpreterTable table;
  absl::StatusOr<std::vector<std::string>> argv = table.command_for(*parse_domain("shell"), "/a.sh");
  ASSERT_TRUE(argv.ok()) << argv.status();
  ASSERT_EQ(argv->size(), 2u);
  EXPECT_EQ((*argv)[0].front(), '/');
  EXPECT_EQ(::access((*argv)[0].c_str(), X_OK), 0);
}

}  // namespace
}  // namespace pesc
