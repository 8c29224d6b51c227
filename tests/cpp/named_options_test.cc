// The one table that reads job options by name for the bindings and the web.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using ::testing::HasSubstr;

std::string error_of(const NamedOptions& named) {
  try {
    map_options_from(named);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    return error.what();
  }
  return "";
}

TEST(NamedOptionsTest, NothingNamedIsTheDefaults) {
  const MapOptions options = map_options_from({});
  const MapOptions defaults;
  EXPECT_EQ(options.max_attempts, defaults.max_attempts);
  EXPECT_EQ(options.timeout, defaults.timeout);
  EXPECT_FALSE(options.seed.has_value());
  EXPECT_TRUE(options.rooms.empty());
}

TEST(NamedOptionsTest, EachOptionReadsItsText) {
  const MapOptions options = map_options_from({{"entry", {"main.R"}},
                                               {"name", {"sweep"}},
                                               {"max_attempts", {"3"}},
                                               {"timeout", {"1.5"}},
                                               {"checkpoint_interval", {"60"}},
                                               {"warm_runner", {"true"}},
                                               {"rooms", {"lab-a", "lab-b"}},
                                               {"same_machine", {"false"}},
                                               {"shared", {"/data/x.csv"}},
                                               {"memory", {"512M"}},
                                               {"cpu_time", {"10"}},
                                               {"open_files", {"64"}},
                                               {"processes", {"8"}},
                                               {"output_size", {"1G"}},
                                               {"network", {"TRUE"}},
                                               {"parallel", {"0"}},
                                               {"no_duplicates", {"1"}},
                                               {"gpus", {"2"}},
                                               {"min_capability", {"7.5"}},
                                               {"seed", {"42"}},
                                               {"notify", {"mailto:a@b"}}});
  EXPECT_EQ(options.entry, "main.R");
  EXPECT_EQ(options.name, "sweep");
  EXPECT_EQ(options.max_attempts, 3);
  EXPECT_EQ(options.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(options.checkpoint_interval, std::chrono::seconds(60));
  EXPECT_TRUE(options.warm_runner);
  EXPECT_EQ(options.rooms, (std::vector<std::string>{"lab-a", "lab-b"}));
  EXPECT_FALSE(options.same_machine);
  EXPECT_EQ(options.shared, std::vector<std::string>{"/data/x.csv"});
  EXPECT_EQ(options.limits.memory_bytes, 512 << 20);
  EXPECT_EQ(options.limits.cpu_time, std::chrono::seconds(10));
  EXPECT_EQ(options.limits.open_files, 64);
  EXPECT_EQ(options.limits.processes, 8);
  EXPECT_EQ(options.limits.output_bytes, int64_t{1} << 30);
  EXPECT_TRUE(options.network);
  EXPECT_FALSE(options.parallel);
  EXPECT_TRUE(options.no_duplicates);
  EXPECT_EQ(options.gpus, 2);
  EXPECT_DOUBLE_EQ(options.min_capability, 7.5);
  EXPECT_EQ(options.seed, 42u);
  EXPECT_EQ(options.notify, std::vector<std::string>{"mailto:a@b"});
  EXPECT_EQ(map_option_names().size(), 21u) << "a MapOptions field without a name, or a name too many";
}

TEST(NamedOptionsTest, ErrorsNameTheOptionAndWhatItTakes) {
  EXPECT_THAT(error_of({{"timeout", {"soon"}}}), HasSubstr("option timeout: \"soon\" is not a number of seconds"));
  EXPECT_THAT(error_of({{"memory", {"lots"}}}), HasSubstr("option memory: \"lots\" is not a size"));
  EXPECT_THAT(error_of({{"max_attempts", {"-1"}}}), HasSubstr("option max_attempts: \"-1\" is not a whole number"));
  EXPECT_THAT(error_of({{"network", {"maybe"}}}), HasSubstr("is not true or false"));
  EXPECT_THAT(error_of({{"gpus", {"1", "2"}}}), HasSubstr("option gpus takes one value, not 2"));
  EXPECT_THAT(error_of({{"timout", {"1"}}}), HasSubstr("unknown option timout; the options are entry, name, "));
}

}  // namespace
}  // namespace pesc
