#include "common/sha256.h"

#include <fstream>
#include <string>

#include "common/files.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

constexpr char kEmptyDigest[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcDigest[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
// FIPS 180-2 two-block message.
constexpr char kTwoBlockMessage[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr char kTwoBlockDigest[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), kEmptyDigest);
  EXPECT_EQ(sha256_hex("abc"), kAbcDigest);
  EXPECT_EQ(sha256_hex(kTwoBlockMessage), kTwoBlockDigest);
}

TEST(Sha256Test, NothingHashedIsTheEmptyDigest) {
  Sha256 hash;
  EXPECT_EQ(hash.finish_hex(), kEmptyDigest);
}

TEST(Sha256Test, IncrementalMatchesOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>((i * 131) % 256));
  Sha256 hash;
  // Uneven pieces, including empty ones, across block boundaries.
  size_t offset = 0;
  for (size_t piece = 0; offset < data.size(); piece = (piece * 7 + 3) % 1000) {
    size_t length = std::min(piece, data.size() - offset);
    hash.update(std::string_view(data).substr(offset, length));
    offset += length;
  }
  EXPECT_EQ(hash.finish_hex(), sha256_hex(data));
}

TEST(Sha256Test, HashesFiles) {
  auto dir = TempDirectory::create("sha256_test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::string binary("a\0b\xff\n", 5);
  std::string big(300000, 'x');
  ASSERT_TRUE(write_file_atomically(dir->path() / "abc", "abc").ok());
  ASSERT_TRUE(write_file_atomically(dir->path() / "empty", "").ok());
  ASSERT_TRUE(write_file_atomically(dir->path() / "binary", binary).ok());
  ASSERT_TRUE(write_file_atomically(dir->path() / "big", big).ok());

  EXPECT_EQ(*sha256_file_hex(dir->path() / "abc"), kAbcDigest);
  EXPECT_EQ(*sha256_file_hex(dir->path() / "empty"), kEmptyDigest);
  EXPECT_EQ(*sha256_file_hex(dir->path() / "binary"), sha256_hex(binary));
  EXPECT_EQ(*sha256_file_hex(dir->path() / "big"), sha256_hex(big));
}

TEST(Sha256Test, MissingFileIsAnError) {
  auto digest = sha256_file_hex("/nonexistent/pesc/sha256_test");
  ASSERT_FALSE(digest.ok());
  EXPECT_NE(digest.status().message().find("/nonexistent/pesc/sha256_test"), std::string::npos);
}

}  // namespace
}  // namespace pesc
