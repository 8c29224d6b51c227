#include "pool/batch_system.h"

#include <cstdlib>
#include <iostream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "pool/settings_file.h"

namespace pesc {

namespace {

// What each key of a template holds, the placeholders it may use and those
// it must.
struct TemplateKey {
  std::string key;
  std::string what;
  std::set<std::string> allowed;
  std::set<std::string> needed;
};

const std::vector<TemplateKey>& template_keys() {
  static const std::vector<TemplateKey> kKeys = {
      {"name", "the batch system's name, shown in `pesc pool list`", {}, {}},
      {"submit", "the command that submits {count} pilots running {script} and prints the job's id first",
       {"pool", "script", "count", "last", "partition", "minutes", "slots", "extra"}, {"script"}},
      {"status", "the command that prints a line \"ID STATE REASON...\" per pilot of the pool {pool}",
       {"pool"}, {}},
      {"cancel", "the command that cancels the pilots {ids}", {"ids"}, {"ids"}},
      {"single_id", "the id the status command gives a single pilot of the job {job}", {"job"}, {"job"}},
      {"array_id", "the id the status command gives pilot {index} of the array job {job}", {"job", "index"},
       {"job", "index"}},
      {"running_states", "the states (words) in which the status command shows a running pilot", {}, {}},
      {"script", "the pilot's shell script, which starts {worker} with --id \"pilot-{pool}-ID\"",
       {"pool", "log_dir", "worker"}, {"worker"}},
  };
  return kKeys;
}

// The {name}s in `text`; "${" is the shell's, not a placeholder.
std::set<std::string> placeholders_in(const std::string& text) {
  std::set<std::string> names;
  for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    if (open > 0 && text[open - 1] == '$') continue;
    size_t end = open + 1;
    while (end < text.size() && (absl::ascii_islower(text[end]) || text[end] == '_')) ++end;
    if (end > open + 1 && end < text.size() && text[end] == '}') names.insert(text.substr(open + 1, end - open - 1));
  }
  return names;
}

std::string braced(const std::set<std::string>& names) {
  std::vector<std::string> each;
  for (const std::string& name : names) each.push_back(absl::StrCat("{", name, "}"));
  return each.empty() ? "none" : absl::StrJoin(each, ", ");
}

absl::Status check_placeholders(const SettingsSection& section, const Setting& setting, const TemplateKey& key) {
  const std::set<std::string> used = placeholders_in(setting.value);
  for (const std::string& name : used) {
    if (!key.allowed.contains(name)) {
      return section.error(setting, absl::StrCat("\"", key.key, "\" uses the unknown placeholder {", name,
                                                 "}; it may use ", braced(key.allowed)));
    }
  }
  for (const std::string& name : key.needed) {
    if (!used.contains(name)) {
      return section.error(setting, absl::StrCat("\"", key.key, "\" must use {", name, "}: it is ", key.what));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> command_of(const SettingsSection& section, const Setting& setting) {
  auto words = split_words(setting.value);
  if (!words.ok()) return section.error(setting, std::string(words.status().message()));
  if (words->empty()) return section.error(setting, absl::StrCat("\"", setting.key, "\" is an empty command"));
  for (const std::string& word : *words) {
    for (const char* alone : {"{extra}", "{ids}"}) {
      if (word != alone && word.find(alone) != std::string::npos) {
        return section.error(setting, absl::StrCat(alone, " stands for several arguments: make it a word of its own, "
                                                          "not part of \"", word, "\""));
      }
    }
  }
  return *std::move(words);
}

}  // namespace

// batch/slurm.batch's text, which CMake puts in slurm_template.cc.
extern const char* const kSlurmTemplate;

absl::StatusOr<BatchSystem> parse_batch_system(const std::string& text, const std::string& file) {
  auto parsed = parse_settings(text, file);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->sections.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(parsed->sections[0].where(),
                                                   ": a batch system template has no sections; remove [",
                                                   parsed->sections[0].kind(), " ", parsed->sections[0].name(), "]"));
  }
  const SettingsSection& top = parsed->top;
  std::set<std::string> known;
  for (const TemplateKey& key : template_keys()) known.insert(key.key);
  if (absl::Status only = top.only(known); !only.ok()) return only;
  std::map<std::string, std::string> values;
  for (const TemplateKey& key : template_keys()) {
    const Setting* setting = top.find(key.key);
    if (setting == nullptr) {
      if (key.key == "single_id" || key.key == "array_id") continue;  // Slurm's forms by default
      return top.required(key.key, key.what).status();
    }
    if (absl::Status checked = check_placeholders(top, *setting, key); !checked.ok()) return checked;
    values[key.key] = setting->value;
  }
  BatchSystem batch;
  batch.name = values["name"];
  if (batch.name.empty() || batch.name.find_first_of(" \t") != std::string::npos) {
    return top.error(*top.find("name"), "\"name\" wants one word, e.g. `name = pbs`");
  }
  for (auto [key, command] :
       {std::pair{"submit", &batch.submit}, {"status", &batch.status}, {"cancel", &batch.cancel}}) {
    auto words = command_of(top, *top.find(key));
    if (!words.ok()) return words.status();
    *command = *std::move(words);
  }
  if (values.contains("single_id")) batch.single_id = values["single_id"];
  if (values.contains("array_id")) batch.array_id = values["array_id"];
  batch.running_states = absl::StrSplit(values["running_states"], absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (batch.running_states.empty()) {
    return top.error(*top.find("running_states"), "\"running_states\" is empty; list the states of a running pilot");
  }
  batch.script = values["script"];
  if (batch.script.find("pilot-{pool}-") == std::string::npos) {
    return top.error(*top.find("script"),
                     "the script must start {worker} with --id \"pilot-{pool}-ID\", ID as the status command names "
                     "the pilot, so the pool knows its pilot joined");
  }
  return batch;
}

const BatchSystem& slurm_batch_system() {
  static const BatchSystem kSlurm = [] {
    auto parsed = parse_batch_system(kSlurmTemplate, "libpesc/pool/batch/slurm.batch");
    if (!parsed.ok()) {
      // A build mistake, caught by pool_test.
      std::cerr << "pesc: the built-in Slurm template is broken: " << parsed.status() << std::endl;
      std::abort();
    }
    return *std::move(parsed);
  }();
  return kSlurm;
}

absl::StatusOr<const BatchSystem*> find_batch_system(const std::string& name) {
  if (name == slurm_batch_system().name) return &slurm_batch_system();
  return absl::NotFoundError(absl::StrCat("no built-in batch system \"", name,
                                          "\"; pesc ships slurm, and any other is a template file (--template FILE)"));
}

absl::StatusOr<BatchSystem> batch_system_of(const PoolSpec& spec) {
  if (!spec.batch_template.empty()) {
    return parse_batch_system(spec.batch_template,
                              spec.batch_template_file.empty() ? "the template" : spec.batch_template_file);
  }
  auto built_in = find_batch_system(spec.batch_system);
  if (!built_in.ok()) return built_in.status();
  return **built_in;
}

std::string expand_text(std::string text, const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const auto& [name, value] : values) replacements.emplace_back(absl::StrCat("{", name, "}"), value);
  return absl::StrReplaceAll(text, replacements);
}

std::vector<std::string> expand_command(const std::vector<std::string>& command,
                                        const std::map<std::string, std::string>& values,
                                        const std::vector<std::string>& extra) {
  std::vector<std::string> argv;
  for (const std::string& argument : command) {
    if (argument == "{extra}" || argument == "{ids}") {
      argv.insert(argv.end(), extra.begin(), extra.end());
      continue;
    }
    bool empty_value = false;
    for (const auto& [name, value] : values) {
      if (value.empty() && argument.find(absl::StrCat("{", name, "}")) != std::string::npos) empty_value = true;
    }
    if (!empty_value) argv.push_back(expand_text(argument, values));
  }
  return argv;
}

std::string shell_quote(const std::string& word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

}  // namespace pesc
