#include "pool/settings_file.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace pesc {
namespace {

constexpr absl::string_view kLong = "\"\"\"";

bool is_key(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

// "quoted" or 'quoted' loses its quotes.
std::string unquoted(absl::string_view value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
    value.remove_prefix(1);
    value.remove_suffix(1);
  }
  return std::string(value);
}

}  // namespace

SettingsSection::SettingsSection(std::string file, std::string kind, std::string name, int line)
    : file_(std::move(file)), kind_(std::move(kind)), name_(std::move(name)), line_(line) {}

std::string SettingsSection::where() const { return kind_.empty() ? file_ : absl::StrCat(file_, ":", line_); }

std::string SettingsSection::where(const Setting& setting) const { return absl::StrCat(file_, ":", setting.line); }

const Setting* SettingsSection::find(const std::string& key) const {
  for (const Setting& setting : settings_) {
    if (setting.key == key) return &setting;
  }
  return nullptr;
}

absl::StatusOr<std::string> SettingsSection::required(const std::string& key, const std::string& what_it_is) const {
  if (const Setting* setting = find(key)) return setting->value;
  return absl::InvalidArgumentError(absl::StrCat(where(), ": ",
                                                 kind_.empty() ? "" : absl::StrCat("[", kind_, " ", name_, "] "),
                                                 "has no \"", key, "\"; add a line `", key, " = ...`: ", what_it_is));
}

absl::Status SettingsSection::only(const std::set<std::string>& known) const {
  for (const Setting& setting : settings_) {
    if (!known.contains(setting.key)) {
      return error(setting, absl::StrCat("unknown key \"", setting.key, "\"; the keys", kind_.empty() ? "" : " of [",
                                         kind_, kind_.empty() ? "" : " NAME]", " are ", absl::StrJoin(known, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status SettingsSection::error(const Setting& setting, const std::string& what) const {
  return absl::InvalidArgumentError(absl::StrCat(where(setting), ": ", what));
}

absl::Status SettingsSection::add(Setting setting) {
  if (const Setting* earlier = find(setting.key)) {
    return error(setting, absl::StrCat("\"", setting.key, "\" is set twice (also on line ", earlier->line,
                                       "); keep one of them"));
  }
  settings_.push_back(std::move(setting));
  return absl::OkStatus();
}

absl::StatusOr<SettingsFile> parse_settings(const std::string& text, const std::string& file) {
  SettingsFile parsed{.file = file, .top = SettingsSection(file, "", "", 1), .sections = {}};
  SettingsSection* section = &parsed.top;
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  auto error = [&file](size_t index, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", index + 1, ": ", what));
  };
  for (size_t index = 0; index < lines.size(); ++index) {
    const absl::string_view line = absl::StripAsciiWhitespace(lines[index]);
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return error(index, "a section header is [KIND NAME], e.g. [pool cluster]");
      std::vector<std::string> words =
          absl::StrSplit(line.substr(1, line.size() - 2), absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (words.size() != 2) return error(index, "a section header is [KIND NAME], e.g. [pool cluster]");
      parsed.sections.emplace_back(file, words[0], words[1], static_cast<int>(index + 1));
      section = &parsed.sections.back();
      continue;
    }
    const size_t equals = line.find('=');
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, equals));
    if (equals == absl::string_view::npos || !is_key(key)) {
      return error(index, absl::StrCat("expected `key = value`, not \"", line, "\""));
    }
    Setting setting{.key = std::string(key), .value = "", .line = static_cast<int>(index + 1)};
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(equals + 1));
    if (value == kLong) {
      std::vector<absl::string_view> block;
      size_t end = index + 1;
      while (end < lines.size() && absl::StripTrailingAsciiWhitespace(lines[end]) != kLong)
        block.push_back(lines[end++]);
      if (end == lines.size()) {
        return error(index, absl::StrCat("\"", key, "\" starts a block with \"\"\" that no line \"\"\" ends"));
      }
      setting.value = absl::StrCat(absl::StrJoin(block, "\n"), "\n");
      index = end;
    } else {
      setting.value = unquoted(value);
    }
    if (absl::Status added = section->add(std::move(setting)); !added.ok()) return added;
  }
  return parsed;
}

absl::StatusOr<SettingsFile> read_settings_file(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text.ok()) return text.status();
  return parse_settings(*text, path.string());
}

absl::StatusOr<std::vector<std::string>> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      const size_t close = text.find(c, i + 1);
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("the quote ", std::string(1, c), " at character ", i + 1, " of `", text, "` is not closed"));
      }
      word += text.substr(i + 1, close - i - 1);
      in_word = true;
      i = close;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace pesc
