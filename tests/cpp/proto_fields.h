#ifndef PESC_TESTS_CPP_PROTO_FIELDS_H_
#define PESC_TESTS_CPP_PROTO_FIELDS_H_

// For the tests of the conversions at the coordinator's edge: whether an
// example message sets every field, and whether two messages are the same.

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace pesc {

// The fields of `message` (nested messages included) that are left at
// their defaults: a round trip proves nothing of those.
inline std::vector<std::string> unset_fields(const google::protobuf::Message& message) {
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

inline void expect_same(const google::protobuf::Message& expected, const google::protobuf::Message& actual) {
  std::string differences;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(expected, actual)) << differences;
}

}  // namespace pesc

#endif  // PESC_TESTS_CPP_PROTO_FIELDS_H_
