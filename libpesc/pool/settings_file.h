#ifndef PESC_POOL_SETTINGS_FILE_H_
#define PESC_POOL_SETTINGS_FILE_H_

// The small text format of batch system templates and the coordinator's
// config file, meant to be written by hand:
//
//   # a comment
//   key = the rest of the line        (quotes around it are kept off)
//   key = """
//   several lines, kept as they are
//   """
//   [pool NAME]                       (a section: the keys below are its own)
//
// Every mistake is reported as "FILE:LINE: what is wrong; what to change".

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pesc {

struct Setting {
  std::string key;
  std::string value;
  int line = 0;
};

class SettingsSection {
 public:
  // `kind` and `name` are empty for the top of a file.
  SettingsSection(std::string file, std::string kind, std::string name, int line);

  const std::string& kind() const { return kind_; }
  const std::string& name() const { return name_; }
  const std::vector<Setting>& settings() const { return settings_; }
  // "FILE:LINE" of the section's header; "FILE" at the top.
  std::string where() const;
  // "FILE:LINE" of a setting.
  std::string where(const Setting& setting) const;

  const Setting* find(const std::string& key) const;
  // The value, or InvalidArgument naming the key when it is missing.
  absl::StatusOr<std::string> required(const std::string& key, const std::string& what_it_is) const;
  // InvalidArgument for the first key not in `known`, listing those.
  absl::Status only(const std::set<std::string>& known) const;
  // An error about `setting`, at its line.
  absl::Status error(const Setting& setting, const std::string& what) const;

  // For the parser.
  absl::Status add(Setting setting);

 private:
  std::string file_;
  std::string kind_;
  std::string name_;
  int line_;
  std::vector<Setting> settings_;
};

struct SettingsFile {
  std::string file;
  SettingsSection top;
  std::vector<SettingsSection> sections;
};

// `file` names the text in messages.
absl::StatusOr<SettingsFile> parse_settings(const std::string& text, const std::string& file);
absl::StatusOr<SettingsFile> read_settings_file(const std::filesystem::path& path);

// A command line's words: split at blanks, with '...' and "..." keeping
// blanks inside one word (no other shell rules).
absl::StatusOr<std::vector<std::string>> split_words(const std::string& text);

}  // namespace pesc

#endif  // PESC_POOL_SETTINGS_FILE_H_
