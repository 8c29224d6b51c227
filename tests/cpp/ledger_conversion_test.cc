// The coordinator's edge: the protocol's messages as the ledger's plain
// types and back, every field kept.
#include "ledger/ledger_conversion.h"

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

// The fields of `message` (nested messages included) that are left at
// their defaults: a round trip proves nothing of those.
std::vector<std::string> unset_fields(const google::protobuf::Message& message) {
  std::vector<std::string> unset;
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const google::protobuf::FieldDescriptor& field = *descriptor.field(i);
    if (field.real_containing_oneof() != nullptr) continue;  // one of them at a time
    const bool set = field.is_repeated() ? reflection.FieldSize(message, &field) > 0 : reflection.HasField(message, &field);
    if (!set) {
      unset.push_back(field.full_name());
    } else if (field.cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE && !field.is_repeated()) {
      for (std::string& name : unset_fields(reflection.GetMessage(message, &field))) unset.push_back(std::move(name));
    }
  }
  return unset;
}

void expect_same(const google::protobuf::Message& expected, const google::protobuf::Message& actual) {
  std::string differences;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(expected, actual)) << differences;
}

v1::JobSpec every_spec_field() {
  v1::JobSpec spec;
  spec.set_domain("python");
  spec.set_process_kind(v1::PROCESS_KIND_ARCHIVE);
  spec.mutable_process()->set_sha256(std::string(64, 'a'));
  spec.mutable_process()->set_size(12);
  spec.set_entry("main.py");
  spec.set_repetitions(8);
  spec.add_parameters("x y");
  spec.add_parameters("");
  spec.set_name("sweep");
  spec.set_user("ana");
  spec.set_max_attempts(3);
  spec.set_timeout_ms(60'000);
  spec.set_checkpoint_interval_ms(5'000);
  spec.set_warm_runner(true);
  spec.add_rooms("lab");
  spec.set_same_machine(true);
  v1::SharedFile& blob = *spec.add_shared();
  blob.set_name("data.csv");
  blob.mutable_blob()->set_sha256(std::string(64, 's'));
  blob.mutable_blob()->set_size(7);
  v1::SharedFile& url = *spec.add_shared();
  url.set_name("big.bin");
  url.set_url("https://example.org/big.bin");
  v1::RankLimits& limits = *spec.mutable_limits();
  limits.set_memory_bytes(1 << 30);
  limits.set_cpu_ms(90'000);
  limits.set_open_files(64);
  limits.set_processes(16);
  limits.set_output_bytes(1 << 20);
  spec.set_network(true);
  spec.set_parallel(true);
  spec.set_no_duplicates(true);
  spec.set_gpus_per_rank(2);
  spec.set_min_capability(7.5);
  spec.set_seed(42);
  spec.add_notify("mailto:ana@example.org");
  return spec;
}

TEST(LedgerConversionTest, AJobSpecKeepsEveryField) {
  const v1::JobSpec proto = every_spec_field();
  ASSERT_EQ(unset_fields(proto), std::vector<std::string>{}) << "set the new fields above";
  const JobSpec spec = from_proto(proto);
  EXPECT_EQ(spec.options.entry, "main.py");
  EXPECT_EQ(spec.options.limits.cpu_time, std::chrono::seconds(90));
  EXPECT_TRUE(spec.archive);
  EXPECT_EQ(spec.shared.at(1).url, "https://example.org/big.bin");
  expect_same(proto, to_proto(spec));
}

TEST(LedgerConversionTest, AOneFileProcessStaysOneFile) {
  v1::JobSpec proto = every_spec_field();
  proto.set_process_kind(v1::PROCESS_KIND_FILE);
  proto.clear_seed();
  EXPECT_FALSE(from_proto(proto).archive);
  expect_same(proto, to_proto(from_proto(proto)));
}

}  // namespace
}  // namespace pesc
