#include "daemon_support.h"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "pesc/pesc.h"

namespace pesc {

namespace {

absl::Mutex handler_mutex;
std::function<void(int)>& handler() {
  static auto* current = new std::function<void(int)>([](int signal) { std::_Exit(128 + signal); });
  return *current;
}

}  // namespace

void handle_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int received = 0;
    while (sigwait(&signals, &received) == 0) {
      std::function<void(int)> act;
      {
        absl::MutexLock lock(&handler_mutex);
        act = handler();
      }
      act(received);
    }
  }).detach();
}

void on_termination_signal(std::function<void(int)> on_signal) {
  absl::MutexLock lock(&handler_mutex);
  handler() = std::move(on_signal);
}

namespace {

constexpr size_t kDescriptionWidth = 70;

// Words wrapped to lines of at most `width` characters, joined by "\n".
std::string wrapped(const std::string& text, size_t width) {
  std::istringstream words(text);
  std::string result;
  size_t line_length = 0;
  for (std::string word; words >> word;) {
    if (line_length > 0 && line_length + 1 + word.size() > width) {
      result += '\n';
      line_length = 0;
    } else if (line_length > 0) {
      result += ' ';
      ++line_length;
    }
    result += word;
    line_length += word.size();
  }
  return result;
}

// CLI11's layout, with the default in words after the description (unless
// the description already says what the default is) instead of "=VALUE"
// glued to the flag, and descriptions wrapped for a terminal.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* option) const override {
    if (option->get_positional() || option->get_type_size() == 0) return "";
    return " " + option->get_type_name();
  }

  std::string make_option_desc(const CLI::Option* option) const override {
    std::string description = option->get_description();
    const std::string value = option->get_default_str();
    const bool says_its_default = description.find("default") != std::string::npos;
    if (!says_its_default && option->get_type_size() != 0 && !value.empty() && value != "[]") {
      // "... (0: no limit)" becomes "... (0: no limit; default: 0)".
      if (!description.empty() && description.back() == ')') {
        description.insert(description.size() - 1, absl::StrCat("; default: ", value));
      } else {
        absl::StrAppend(&description, " (default: ", value, ")");
      }
    }
    return wrapped(description, kDescriptionWidth);
  }

  // "--owners-first,--no-owners-first", without CLI11's "{false}" after the negated name.
  std::string make_option_name(const CLI::Option* option, bool is_positional) const override {
    std::string name = CLI::Formatter::make_option_name(option, is_positional);
    for (size_t open = name.find('{'); open != std::string::npos; open = name.find('{')) {
      name.erase(open, name.find('}', open) - open + 1);
    }
    name.erase(name.find_last_not_of(' ') + 1);
    return name;
  }

  // A command in --help-all (what the man page shows): a heading of its own
  // and its flags unindented, as help2man expects them.
  std::string make_expanded(const CLI::App* command) const override {
    return absl::StrCat("\n", command->get_parent()->get_name(), " ", command->get_name(), ":\n  ",
                        command->get_description(), "\n", make_positionals(command),
                        make_groups(command, CLI::AppFormatMode::Sub));
  }

  // CLI11's, with one blank line between groups instead of two.
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    std::string help = CLI::Formatter::make_help(app, std::move(name), mode);
    for (size_t at = help.find("\n\n\n"); at != std::string::npos; at = help.find("\n\n\n", at)) help.erase(at, 1);
    return help;
  }
};

// "--state_dir" -> "--state-dir", "-state-dir=X" -> "--state-dir=X": absl
// spelled flags with underscores and took one dash; scripts still do.
std::string dash_form(std::string arg) {
  const bool one_dash_word = arg.size() > 2 && arg[0] == '-' && std::isalpha(static_cast<unsigned char>(arg[1]));
  if (one_dash_word) arg.insert(0, "-");
  if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) return arg;
  const size_t name_end = std::min(arg.find('='), arg.size());
  std::replace(arg.begin(), arg.begin() + static_cast<std::ptrdiff_t>(name_end), '_', '-');
  return arg;
}

std::string help_pointer(const CLI::App& program, const CLI::App* command) {
  return command == nullptr ? absl::StrCat("`", program.get_name(), " --help`")
                            : absl::StrCat("`", program.get_name(), " help ", command->get_name(), "`");
}

const CLI::App* selected_command(const CLI::App& app) {
  std::vector<CLI::App*> selected = app.get_subcommands();
  return selected.empty() ? nullptr : selected.front();
}

// The first of the program's commands that takes the flag `name` ("--repetitions").
const CLI::App* command_with_flag(const CLI::App& program, const std::string& name) {
  std::vector<const CLI::App*> owners = program.get_subcommands(
      [&name](const CLI::App* command) { return command->get_option_no_throw(name) != nullptr; });
  return owners.empty() ? nullptr : owners.front();
}

// What CLI11 left over in `app` (each App keeps its own): an unknown flag,
// a command that does not exist, or one argument too many.
std::optional<int> reject_leftovers(const CLI::App& program, const CLI::App& app) {
  const std::vector<std::string> left = app.remaining();
  if (left.empty()) return std::nullopt;
  const CLI::App* command = &app == &program ? nullptr : &app;
  auto flag = std::find_if(left.begin(), left.end(), [](const std::string& arg) { return arg.rfind("-", 0) == 0; });
  if (flag != left.end()) {
    const std::string name = flag->substr(0, flag->find('='));
    if (const CLI::App* owner = command_with_flag(program, name); command == nullptr && owner != nullptr) {
      return usage_error(program,
                         absl::StrCat(name, " belongs after the command: ", program.get_name(), " ", owner->get_name(),
                                      " ", name, " ..."),
                         owner);
    }
    return usage_error(program, absl::StrCat("unknown flag ", name), command);
  }
  const bool is_program_with_commands =
      command == nullptr && !program.get_subcommands([](const CLI::App*) { return true; }).empty();
  if (is_program_with_commands) return usage_error(program, absl::StrCat("unknown command \"", left[0], "\""));
  return usage_error(program, absl::StrCat("unexpected argument \"", left[0], "\""), command);
}

}  // namespace

void set_up_help(CLI::App& app, const std::string& program) {
  app.name(program);
  app.formatter(std::make_shared<HelpFormatter>());
  app.get_formatter()->column_width(30);
  app.get_formatter()->label("Subcommands", "Commands");
  app.get_formatter()->label("SUBCOMMAND", "COMMAND");
  app.get_formatter()->label("Positionals", "Arguments");
  // A flag given twice means its last value, as with absl: a script's
  // defaults can be overridden by flags added after them.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", absl::StrCat(program, " ", PESC_VERSION));
  // Unknown flags and arguments are reported by parse_command_line, one line each.
  app.allow_extras();
}

CLI::Option* add_list_option(CLI::App& app, const std::string& name, std::vector<std::string>& values,
                             const std::string& description) {
  return app.add_option(name, values, description)
      ->delimiter(',')
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void add_tls_client_options(CLI::App& app, std::string& tls_ca, std::string& tls_cert, std::string& tls_key,
                            const std::string& group) {
  app.add_option("--tls-ca", tls_ca,
                 "PEM CA that signed the coordinator's certificate; set: TLS (default: $PESC_TLS_CA)")
      ->type_name("PEM")->group(group);
  app.add_option("--tls-cert", tls_cert,
                 "PEM client certificate for a coordinator that asks for one (with --tls-key; default: none)")
      ->type_name("PEM")->group(group);
  app.add_option("--tls-key", tls_key, "PEM key of --tls-cert (default: none)")->type_name("PEM")->group(group);
}

std::vector<std::string> arguments_after_separator(int argc, char** argv) {
  auto separator = std::find_if(argv + 1, argv + argc, [](const char* arg) { return std::string_view(arg) == "--"; });
  return separator == argv + argc ? std::vector<std::string>{} : std::vector<std::string>(separator + 1, argv + argc);
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    std::string arg = dash_form(argv[i]);
    // CLI11 reads "--run-as=" as "--run-as" wanting the next argument; it means the empty value.
    const bool empty_value = arg.size() > 3 && arg.rfind("--", 0) == 0 && arg.back() == '=';
    if (empty_value) arg.pop_back();
    args.push_back(std::move(arg));
    if (empty_value) args.emplace_back();
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& version) {
    std::cout << version.what() << std::endl;
    return 0;
  } catch (const CLI::ParseError& error) {
    return usage_error(app, error.what(), selected_command(app));
  }
  if (auto rejected = reject_leftovers(app, app)) return rejected;
  const CLI::App* command = selected_command(app);
  return command == nullptr ? std::nullopt : reject_leftovers(app, *command);
}

int usage_error(const CLI::App& program, const std::string& message, const CLI::App* command) {
  std::cerr << program.get_name() << ": " << message << "; see " << help_pointer(program, command) << "\n";
  return kExitUsage;
}

}  // namespace pesc
