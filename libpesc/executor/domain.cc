#include "executor/domain.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace pesc {
namespace {

constexpr char kEntry[] = "{entry}";

struct BuiltinDomain {
  const char* name;
  std::vector<const char*> words;
};

const std::vector<BuiltinDomain>& builtin_domains() {
  static const auto* const kBuiltins = new std::vector<BuiltinDomain>{
      {"native", {kEntry}},      {"python", {"python3", kEntry}},    {"R", {"Rscript", kEntry}},
      {"shell", {"sh", kEntry}}, {"java", {"java", "-jar", kEntry}},
  };
  return *kBuiltins;
}

const BuiltinDomain* find_builtin(absl::string_view name) {
  for (const BuiltinDomain& builtin : builtin_domains()) {
    if (builtin.name == name) return &builtin;
  }
  return nullptr;
}

absl::Status unknown_domain(absl::string_view text) {
  std::string hint;
  for (const BuiltinDomain& builtin : builtin_domains()) {
    if (absl::EqualsIgnoreCase(builtin.name, text)) {
      hint = absl::StrCat(" (did you mean \"", builtin.name, "\"?)");
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown domain \"", text, "\"", hint,
                   ": use one of native, python, R, shell, java, or a command template "
                   "containing {entry} such as \"julia {entry}\""));
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// POSIX sh word splitting without expansions: inside double quotes a
// backslash only escapes the characters sh gives it meaning before.
absl::StatusOr<std::vector<std::string>> split_words(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // "" must still make an (empty) word
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (is_blank(c)) {
      if (in_word) words.push_back(std::exchange(word, {}));
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unbalanced single quote in domain template: ", text));
      }
      word.append(text.data() + i + 1, close - i - 1);
      i = close;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() &&
            absl::string_view("$`\"\\\n").find(text[j + 1]) != absl::string_view::npos) {
          ++j;
        }
        word.push_back(text[j]);
      }
      if (j >= text.size()) {
        return absl::InvalidArgumentError(absl::StrCat("unbalanced double quote in domain template: ", text));
      }
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        return absl::InvalidArgumentError(absl::StrCat("domain template ends with a lone backslash: ", text));
      }
      word.push_back(text[++i]);
    } else {
      word.push_back(c);
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace

absl::StatusOr<Domain> parse_domain(std::string_view std_text) {
  // Debian's abseil has its own string_view type.
  const absl::string_view text(std_text.data(), std_text.size());
  if (const BuiltinDomain* builtin = find_builtin(text)) {
    return Domain{std::string(builtin->name),
                  std::vector<std::string>(builtin->words.begin(), builtin->words.end())};
  }
  if (!absl::StrContains(text, kEntry)) return unknown_domain(text);
  auto words = split_words(text);
  if (!words.ok()) return words.status();
  // Found by tests/fuzz/domain_fuzz: "'' {entry}" split into an empty program.
  if (words->empty() || words->front().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the command template \"", text,
                                                   "\" must start with the program to run, not an empty word"));
  }
  return Domain{std::string(text), *std::move(words)};
}

InterpreterTable::InterpreterTable(std::map<std::string, std::string> overrides)
    : overrides_(std::move(overrides)) {}

absl::StatusOr<std::vector<std::string>> InterpreterTable::command_for(const Domain& domain,
                                                                       const std::string& entry) {
  if (domain.words.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("domain \"", domain.name, "\" has no words"));
  }
  if (entry.empty() || entry.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("entry must be an absolute path: ", entry));
  }
  std::vector<std::string> argv;
  argv.reserve(domain.words.size());
  for (const std::string& word : domain.words) {
    argv.push_back(absl::StrReplaceAll(word, {{kEntry, entry}}));
  }
  // The entry, or a path the template spelled out, is run as it is.
  if (absl::StrContains(domain.words[0], kEntry) || argv[0].front() == '/') return argv;

  std::string program = argv[0];
  if (auto by_domain = overrides_.find(domain.name); by_domain != overrides_.end()) {
    program = by_domain->second;
  }
  absl::StatusOr<std::string> resolved = resolve(program);
  if (!resolved.ok()) {
    // Built-ins are overridden by domain name, templates by program name.
    const std::string& key = find_builtin(domain.name) != nullptr ? domain.name : argv[0];
    return absl::Status(
        resolved.status().code(),
        absl::StrCat(resolved.status().message(), " (needed by domain \"", domain.name,
                     "\"): install it or pass `pesc-worker --interpreter ", key, "=/abs/path`"));
  }
  argv[0] = *std::move(resolved);
  return argv;
}

absl::StatusOr<std::string> InterpreterTable::resolve(const std::string& program) {
  {
    absl::MutexLock lock(&mutex_);
    if (auto it = resolved_.find(program); it != resolved_.end()) return it->second;
  }
  std::string target = program;
  if (auto by_program = overrides_.find(program); by_program != overrides_.end()) {
    target = by_program->second;
  }
  std::string found;
  if (!target.empty() && target.front() == '/') {
    if (!is_executable_file(target)) {
      return absl::NotFoundError(absl::StrCat("program \"", target, "\" is not an executable file"));
    }
    found = target;
  } else if (target.empty() || absl::StrContains(target, '/')) {
    return absl::NotFoundError(absl::StrCat("program \"", target, "\" is neither absolute nor a bare name"));
  } else {
    const std::string path = search_path();
    std::optional<std::string> on_path = find_on_path(target, path);
    if (!on_path) {
      return absl::NotFoundError(absl::StrCat("program \"", target, "\" was not found on PATH (", path, ")"));
    }
    found = *std::move(on_path);
  }
  // Failures are not remembered, so installing the program later is enough.
  absl::MutexLock lock(&mutex_);
  resolved_.emplace(program, found);
  return found;
}


std::vector<std::string> builtin_domain_names() {
  std::vector<std::string> names;
  for (const BuiltinDomain& builtin : builtin_domains()) names.push_back(builtin.name);
  return names;
}

std::string domain_for_file(std::string_view file_name) {
  auto ends_with = [&](std::string_view suffix) {
    return file_name.size() >= suffix.size() && file_name.substr(file_name.size() - suffix.size()) == suffix;
  };
  if (ends_with(".py")) return "python";
  if (ends_with(".R") || ends_with(".r")) return "R";
  if (ends_with(".sh")) return "shell";
  if (ends_with(".jar")) return "java";
  return "native";
}

}  // namespace pesc
