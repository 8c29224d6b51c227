// The PESC rank contract as a C++ rank reads it, with the defaults of the
// published Python header, by hand: an example rank needs nothing but the
// standard library. Header-only, shared by the examples' native ranks.
#ifndef PESC_EXAMPLES_RANK_ARGUMENTS_H_
#define PESC_EXAMPLES_RANK_ARGUMENTS_H_

#include <charconv>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rank_arguments {

namespace fs = std::filesystem;

// The PESC rank contract, with the defaults of the published Python header.
struct RankArguments {
  std::string app_dir = fs::current_path().string() + "/";
  std::string checkpoint_dir = (fs::current_path() / "checkpoint").string();
  std::string output_dir = (fs::current_path() / "output").string();
  std::string rank = "0";
  std::string world_size = "1";
  std::string master_addr = "127.0.0.1";
  std::string master_port = "9000";
  std::vector<std::string> parameters;
};

struct Flag {
  std::string_view long_name;
  std::string_view short_name;
  std::string RankArguments::*value;  // null for --parameters, which takes a list
};

inline constexpr Flag kFlags[] = {
    {"--app_dir", "-a", &RankArguments::app_dir},
    {"--checkpoint_dir", "-c", &RankArguments::checkpoint_dir},
    {"--output_dir", "-o", &RankArguments::output_dir},
    {"--rank", "-r", &RankArguments::rank},
    {"--world_size", "-w", &RankArguments::world_size},
    {"--master_addr", "-d", &RankArguments::master_addr},
    {"--master_port", "-t", &RankArguments::master_port},
    {"--parameters", "-p", nullptr},
};

// The flag `arg` names, with "--name=value" split off into `inline_value`.
inline const Flag* find_flag(std::string_view arg, std::optional<std::string_view>* inline_value) {
  std::string_view name = arg;
  if (arg.starts_with("--")) {
    if (size_t equals = arg.find('='); equals != std::string_view::npos) {
      name = arg.substr(0, equals);
      if (inline_value != nullptr) *inline_value = arg.substr(equals + 1);
    }
  }
  for (const Flag& flag : kFlags) {
    if (name == flag.long_name || name == flag.short_name) return &flag;
  }
  return nullptr;
}

// Like argparse: an unknown flag or a missing value is an error, and
// --parameters takes every following argument up to the next flag.
inline std::optional<RankArguments> parse_arguments(int argc, char** argv, std::string* error) {
  RankArguments arguments;
  for (int i = 1; i < argc; ++i) {
    std::optional<std::string_view> inline_value;
    const Flag* flag = find_flag(argv[i], &inline_value);
    if (flag == nullptr) {
      *error = std::string("unrecognized argument: ") + argv[i];
      return std::nullopt;
    }
    if (flag->value == nullptr) {
      arguments.parameters.clear();
      if (inline_value) arguments.parameters.emplace_back(*inline_value);
      while (i + 1 < argc && find_flag(argv[i + 1], nullptr) == nullptr) arguments.parameters.emplace_back(argv[++i]);
      continue;
    }
    if (inline_value) {
      arguments.*(flag->value) = std::string(*inline_value);
    } else if (i + 1 < argc) {
      arguments.*(flag->value) = argv[++i];
    } else {
      *error = std::string(flag->long_name) + " expects a value";
      return std::nullopt;
    }
  }
  return arguments;
}

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace rank_arguments

#endif  // PESC_EXAMPLES_RANK_ARGUMENTS_H_
