#include "archive/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace pesc::archive {
namespace {

namespace fs = std::filesystem;
using Names = std::vector<std::string>;

// GoogleTest alone, without gmock: the test links only gtest.
::testing::AssertionResult mentions(absl::string_view text, absl::string_view needle) {
  if (text.find(needle) != absl::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not mention \"" << needle << "\"";
}

void put_file(const fs::path& path, const std::string& contents, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  ASSERT_TRUE(out) << path;
  fs::permissions(path, mode);
}

std::string get_file(const fs::path& path) {
  auto contents = read_file(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  return contents.ok() ? *contents : "";
}

std::string binary_bytes(size_t size, unsigned seed) {
  std::string bytes;
  bytes.reserve(size);
  for (size_t i = 0; i < size; ++i) {
    seed = seed * 1103515245u + 12345u;
    bytes.push_back(static_cast<char>(seed >> 16));
  }
  return bytes;
}

std::vector<std::string> tree_names(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    names.push_back(entry.path().lexically_relative(dir).generic_string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// What a hand-built archive holds, possibly hostile.
struct RawEntry {
  std::string name;
  unsigned type = AE_IFREG;
  std::string contents;
  std::string symlink;
  std::string hardlink;
  unsigned mode = 0644;
};

RawEntry file_entry(std::string name, std::string contents = "payload", unsigned mode = 0644) {
  return RawEntry{std::move(name), AE_IFREG, std::move(contents), "", "", mode};
}
RawEntry dir_entry(std::string name) { return RawEntry{std::move(name), AE_IFDIR, "", "", "", 0755}; }
RawEntry symlink_entry(std::string name, std::string target) {
  return RawEntry{std::move(name), AE_IFLNK, "", std::move(target), "", 0777};
}
RawEntry hardlink_entry(std::string name, std::string target) {
  return RawEntry{std::move(name), AE_IFREG, "", "", std::move(target), 0644};
}

enum class Format { kTar, kTarGz, kZip };

void write_raw_archive(const fs::path& path, Format format, const std::vector<RawEntry>& entries) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> writer(archive_write_new(), archive_write_free);
  if (format == Format::kZip) {
    ASSERT_EQ(archive_write_set_format_zip(writer.get()), ARCHIVE_OK);
  } else {
    ASSERT_EQ(archive_write_set_format_pax_restricted(writer.get()), ARCHIVE_OK);
  }
  if (format == Format::kTarGz) {
    ASSERT_EQ(archive_write_add_filter_gzip(writer.get()), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_open_filename(writer.get(), path.c_str()), ARCHIVE_OK) << archive_error_string(writer.get());
  for (const RawEntry& raw : entries) {
    std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> entry(archive_entry_new(),
                                                                                  archive_entry_free);
    archive_entry_set_pathname(entry.get(), raw.name.c_str());
    archive_entry_set_filetype(entry.get(), raw.type);
    archive_entry_set_perm(entry.get(), raw.mode);
    archive_entry_set_mtime(entry.get(), 1700000000, 0);
    if (!raw.symlink.empty()) archive_entry_set_symlink(entry.get(), raw.symlink.c_str());
    if (!raw.hardlink.empty()) archive_entry_set_hardlink(entry.get(), raw.hardlink.c_str());
    if (raw.type == AE_IFCHR) archive_entry_set_rdev(entry.get(), makedev(1, 3));
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(raw.contents.size()));
    ASSERT_GE(archive_write_header(writer.get(), entry.get()), ARCHIVE_WARN) << archive_error_string(writer.get());
    if (!raw.contents.empty()) {
      ASSERT_EQ(archive_write_data(writer.get(), raw.contents.data(), raw.contents.size()),
                static_cast<la_ssize_t>(raw.contents.size()));
    }
  }
  ASSERT_EQ(archive_write_close(writer.get()), ARCHIVE_OK) << archive_error_string(writer.get());
}

// Names in the order the archive stores them.
std::vector<std::string> stored_names(const fs::path& path) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> reader(archive_read_new(), archive_read_free);
  archive_read_support_format_all(reader.get());
  std::vector<std::string> names;
  if (archive_read_open_filename(reader.get(), path.c_str(), 10240) != ARCHIVE_OK) return names;
  struct archive_entry* entry = nullptr;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) names.push_back(archive_entry_pathname(entry));
  return names;
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = TempDirectory::create("archive_test");
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = std::make_unique<TempDirectory>(*std::move(temp));
  }

  const fs::path& root() const { return temp_->path(); }

 private:
  std::unique_ptr<TempDirectory> temp_;
};

TEST_F(ArchiveTest, RoundTripKeepsBytesModesAndNames) {
  const fs::path source = root() / "source";
  const std::string tool = binary_bytes(70000, 1) + std::string(1, '\0');
  const std::string large = binary_bytes(3 * 1024 * 1024 + 17, 2);
  const std::string unicode_name = "donn\xc3\xa9" "es/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9-\xe5\x90\x8d\xe5\x89\x8d.txt";
  put_file(source / "bin/tool", tool, fs::perms(0755));
  put_file(source / "empty", "");
  put_file(source / "a/b/c/deep.txt", "deep\r\n\0inside", fs::perms(0600));
  put_file(source / "large.bin", large);
  put_file(source / unicode_name, "unicode");
  fs::create_directories(source / "empty_dir");
  fs::create_symlink("a/b/c/deep.txt", source / "link_to_deep");

  const fs::path tar = root() / "tree.tar";
  ASSERT_TRUE(pack_directory(source, tar).ok());

  std::vector<std::string> stored = stored_names(tar);
  EXPECT_TRUE(std::is_sorted(stored.begin(), stored.end()));
  for (const std::string& name : stored) {
    EXPECT_FALSE(name.starts_with("/") || name.starts_with("./") || name.find("..") != std::string::npos) << name;
  }

  auto files = list_files(tar);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (Names{"a/b/c/deep.txt", "bin/tool", unicode_name, "empty", "large.bin"}));

  const fs::path out = root() / "out";
  ASSERT_TRUE(extract(tar, out).ok());
  EXPECT_EQ(tree_names(out), tree_names(source));
  EXPECT_EQ(get_file(out / "bin/tool"), tool);
  EXPECT_EQ(get_file(out / "large.bin"), large);
  EXPECT_EQ(get_file(out / "a/b/c/deep.txt"), get_file(source / "a/b/c/deep.txt"));
  EXPECT_EQ(get_file(out / unicode_name), "unicode");
  EXPECT_EQ(fs::file_size(out / "empty"), 0u);
  EXPECT_TRUE(fs::is_directory(out / "empty_dir"));
  EXPECT_EQ(fs::status(out / "bin/tool").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_EQ(fs::status(out / "a/b/c/deep.txt").permissions() & fs::perms::all, fs::perms(0600));
  ASSERT_TRUE(fs::is_symlink(out / "link_to_deep"));
  EXPECT_EQ(fs::read_symlink(out / "link_to_deep"), fs::path("a/b/c/deep.txt"));
}

TEST_F(ArchiveTest, PackingTwiceGivesTheSameBytes) {
  const fs::path source = root() / "source";
  put_file(source / "x/y.txt", "y");
  put_file(source / "z.bin", binary_bytes(1000, 3));
  ASSERT_TRUE(pack_directory(source, root() / "one.tar").ok());
  ASSERT_TRUE(pack_directory(source, root() / "two.tar").ok());
  EXPECT_EQ(get_file(root() / "one.tar"), get_file(root() / "two.tar"));
}

TEST_F(ArchiveTest, ReadsOneMemberFromMemory) {
  const fs::path source = root() / "source";
  put_file(source / "x/result.bin", binary_bytes(3000, 7));
  put_file(source / "other.txt", "other");
  ASSERT_TRUE(pack_directory(source, root() / "packed.tar").ok());
  const std::string tar = get_file(root() / "packed.tar");
  auto member = read_member(tar, "x/result.bin");
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_EQ(*member, binary_bytes(3000, 7));
  EXPECT_EQ(read_member(tar, "missing.txt").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read_member(tar, "x").status().code(), absl::StatusCode::kNotFound) << "a directory is no file";
  EXPECT_EQ(read_member("not an archive at all", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ArchiveTest, PacksASmallTreeInMemoryAndRefusesOneOverTheBound) {
  const fs::path source = root() / "source";
  put_file(source / "value.pickle", binary_bytes(5000, 3));
  put_file(source / "output.txt", "left out");
  auto tar = pack_directory_in_memory(source, {"output.txt"}, 64 * 1024);
  ASSERT_TRUE(tar.ok()) << tar.status();
  auto member = read_member(*tar, "value.pickle");
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_EQ(*member, binary_bytes(5000, 3));
  EXPECT_EQ(read_member(*tar, "output.txt").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pack_directory_in_memory(source, {}, 4096).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(ArchiveTest, ASmallTarInMemoryIsGzippedAndALargeOneIsNot) {
  auto packed = pack_directory_in_memory(fs::path(), {}, 1 << 20, {{"result.pkl", binary_bytes(20, 1)}});
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(packed->substr(0, 2), "\x1f\x8b") << "gzip magic";
  EXPECT_LT(packed->size(), 200u) << "a tar's padding compresses away";
  EXPECT_EQ(*read_member(*packed, "result.pkl"), binary_bytes(20, 1));
  const fs::path unpacked = root() / "unpacked";
  const fs::path tar = root() / "small.tar";
  put_file(tar, *packed);
  ASSERT_TRUE(extract(tar, unpacked).ok()) << "save() writes it out like any other archive";
  EXPECT_EQ(get_file(unpacked / "result.pkl"), binary_bytes(20, 1));

  auto large = pack_directory_in_memory(fs::path(), {}, 1 << 20, {{"big.bin", binary_bytes(kGzipUpToBytes, 2)}});
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_NE(large->substr(0, 2), "\x1f\x8b") << "what is sizeable goes as it is, without a compressor's cost";
  EXPECT_EQ(*read_member(*large, "big.bin"), binary_bytes(kGzipUpToBytes, 2));
}

TEST_F(ArchiveTest, ExcludeSkipsOnlyTopLevelNames) {
  const fs::path source = root() / "source";
  put_file(source / "keep.txt", "keep");
  put_file(source / "skip_me/inner.txt", "skipped");
  put_file(source / ".pesc", "skipped");
  put_file(source / "sub/skip_me", "kept: not top level");

  const fs::path tar = root() / "tree.tar";
  ASSERT_TRUE(pack_directory(source, tar, {"skip_me", ".pesc"}).ok());
  auto files = list_files(tar);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (Names{"keep.txt", "sub/skip_me"}));
  EXPECT_EQ(stored_names(tar), (Names{"keep.txt", "sub/", "sub/skip_me"}));
}

TEST_F(ArchiveTest, ArchiveInsideThePackedDirectoryIsNotPackedIntoItself) {
  const fs::path source = root() / "source";
  put_file(source / "data.txt", "data");
  ASSERT_TRUE(pack_directory(source, source / "self.tar").ok());
  auto files = list_files(source / "self.tar");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (Names{"data.txt"}));
}

TEST_F(ArchiveTest, PackRefusesSymlinksLeavingTheDirectory) {
  put_file(root() / "secret", "secret");
  for (const std::string& target : std::vector<std::string>{"../secret", (root() / "secret").string(), "sub/../../secret"}) {
    const fs::path source = root() / "source";
    fs::remove_all(source);
    put_file(source / "ok.txt", "ok");
    fs::create_directories(source / "sub");
    fs::create_symlink(target, source / "sneaky");
    const fs::path tar = root() / "tree.tar";
    absl::Status status = pack_directory(source, tar);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_TRUE(mentions(status.message(), "sneaky"));
    EXPECT_FALSE(fs::exists(tar)) << "a refused pack leaves no archive";
  }
}

TEST_F(ArchiveTest, FindsTheLinksThatLeadOutOfATree) {
  const fs::path tree = root() / "output";
  put_file(tree / "kept.txt", "kept");
  fs::create_directories(tree / "sub");
  fs::create_symlink("/etc/passwd", tree / "passwd");
  fs::create_symlink("../kept.txt", tree / "sub" / "inside");
  fs::create_symlink("../../secret", tree / "sub" / "outside");
  fs::create_symlink("sub/inside", tree / "via_link");
  auto escaping = links_leading_outside(tree);
  ASSERT_TRUE(escaping.ok()) << escaping.status();
  EXPECT_EQ(*escaping, (std::vector<std::string>{"passwd", "sub/outside"}));
}

TEST_F(ArchiveTest, PackRefusesAMissingDirectory) {
  absl::Status status = pack_directory(root() / "missing", root() / "tree.tar");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(mentions(status.message(), "missing"));
}

TEST_F(ArchiveTest, DirectoryIsEmptyExcept) {
  const fs::path dir = root() / "dir";
  fs::create_directories(dir);
  EXPECT_EQ(directory_is_empty_except(dir, {}).value(), true);
  put_file(dir / ".pesc", "");
  EXPECT_EQ(directory_is_empty_except(dir, {".pesc"}).value(), true);
  EXPECT_EQ(directory_is_empty_except(dir, {}).value(), false);
  fs::create_directories(dir / "sub/.pesc");
  EXPECT_EQ(directory_is_empty_except(dir, {".pesc"}).value(), false);
  EXPECT_FALSE(directory_is_empty_except(root() / "missing", {}).ok());
}

TEST_F(ArchiveTest, ReadsZipAndTarGz) {
  const std::vector<RawEntry> entries = {dir_entry("pkg/"), file_entry("pkg/run.sh", "#!/bin/sh\necho hi\n", 0755),
                                         file_entry("pkg/data.bin", binary_bytes(5000, 4)), file_entry("top.txt", "")};
  for (Format format : {Format::kZip, Format::kTarGz, Format::kTar}) {
    const fs::path path = root() / "input.archive";
    write_raw_archive(path, format, entries);
    auto files = list_files(path);
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_EQ(*files, (Names{"pkg/run.sh", "pkg/data.bin", "top.txt"}));

    const fs::path out = root() / "out";
    fs::remove_all(out);
    ASSERT_TRUE(extract(path, out).ok());
    EXPECT_EQ(get_file(out / "pkg/run.sh"), "#!/bin/sh\necho hi\n");
    EXPECT_EQ(get_file(out / "pkg/data.bin"), binary_bytes(5000, 4));
    EXPECT_EQ(get_file(out / "top.txt"), "");
    EXPECT_NE(fs::status(out / "pkg/run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  }
}

// Zip marks UTF-8 names with a flag; libarchive drops such names under a C
// locale (this test's) unless the library shields it.
TEST_F(ArchiveTest, ReadsUtf8FlaggedZipNamesUnderACLocale) {
  const std::string name = "\xc3\xbc" "ber/\xe5\x90\x8d.txt";
  const fs::path zip = root() / "utf8.zip";
  {
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    ASSERT_NE(utf8, static_cast<locale_t>(nullptr));
    locale_t previous = uselocale(utf8);
    write_raw_archive(zip, Format::kZip, {file_entry(name, "named")});
    uselocale(previous);
    freelocale(utf8);
  }
  const std::string bytes = get_file(zip);
  ASSERT_GT(bytes.size(), 8u);
  ASSERT_NE(static_cast<unsigned char>(bytes[7]) & 0x08, 0) << "the zip should carry the UTF-8 flag";

  auto files = list_files(zip);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (Names{name}));
  ASSERT_TRUE(extract(zip, root() / "out").ok());
  EXPECT_EQ(get_file(root() / "out" / name), "named");
}

TEST_F(ArchiveTest, AcceptsDotPrefixedNamesAndInsideLinks) {
  const fs::path path = root() / "dots.tar";
  write_raw_archive(path, Format::kTar,
                    {dir_entry("./"), file_entry("./a.txt", "a"), dir_entry("./d"), symlink_entry("d/up", "../a.txt"),
                     hardlink_entry("d/same", "a.txt"), symlink_entry("self", ".")});
  auto files = list_files(path);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (Names{"a.txt", "d/same"}));
  const fs::path out = root() / "out";
  ASSERT_TRUE(extract(path, out).ok());
  EXPECT_EQ(get_file(out / "d/up"), "a");
  EXPECT_EQ(get_file(out / "d/same"), "a");
  EXPECT_EQ(fs::hard_link_count(out / "a.txt"), 2u);
}

TEST_F(ArchiveTest, SetIdBitsAreDropped) {
  const fs::path path = root() / "setuid.tar";
  write_raw_archive(path, Format::kTar, {file_entry("tool", "x", 04755)});
  const fs::path out = root() / "out";
  ASSERT_TRUE(extract(path, out).ok());
  EXPECT_EQ(fs::status(out / "tool").permissions() & (fs::perms::all | fs::perms::set_uid),
            fs::perms(0755));
}

struct HostileCase {
  std::string label;
  Format format;
  std::vector<RawEntry> entries;
  std::string offending;  // the entry name the error must mention
};

// Every hostile archive aims at `outside`, a sibling of the destination
// holding a sentinel, so a failure to refuse shows up there.
std::vector<HostileCase> hostile_cases(const fs::path& outside) {
  const std::string sentinel = (outside / "sentinel").string();
  return {
      {"absolute path", Format::kTar, {file_entry((outside / "evil").string())}, (outside / "evil").string()},
      {"dot-dot", Format::kTar, {file_entry("../outside/evil")}, "../outside/evil"},
      {"dot-dot in the middle", Format::kTar, {dir_entry("a/"), file_entry("a/../../outside/evil")},
       "a/../../outside/evil"},
      {"dot-dot in tar.gz", Format::kTarGz, {file_entry("../outside/evil")}, "../outside/evil"},
      {"dot-dot in zip", Format::kZip, {file_entry("ok.txt"), file_entry("../outside/evil")}, "../outside/evil"},
      {"absolute path in zip", Format::kZip, {file_entry((outside / "evil").string())}, (outside / "evil").string()},
      {"symlink to /etc/passwd", Format::kTar, {symlink_entry("passwd", "/etc/passwd")}, "passwd"},
      {"file written through an absolute symlink", Format::kTar,
       {symlink_entry("link", sentinel), file_entry("link", "pwned")}, "link"},
      {"file written below an absolute symlink", Format::kTar,
       {symlink_entry("link", outside.string()), file_entry("link/evil")}, "link"},
      {"file written below a relative symlink", Format::kTar,
       {symlink_entry("link", "../outside"), file_entry("link/evil")}, "link"},
      {"file below an inside symlink", Format::kTar,
       {dir_entry("real"), symlink_entry("link", "real"), file_entry("link/evil")}, "link/evil"},
      {"symlink in zip", Format::kZip, {symlink_entry("link", "../outside/sentinel")}, "link"},
      {"symlinks escaping together", Format::kTar,
       {dir_entry("a/b"), symlink_entry("a/b/l", "../../r/.."), symlink_entry("r", ".")}, "a/b/l"},
      {"symlink loop", Format::kTar, {symlink_entry("x", "y"), symlink_entry("y", "x")}, "y"},
      {"hard link to an absolute path", Format::kTar, {hardlink_entry("h", sentinel)}, "h"},
      {"hard link with dot-dot", Format::kTar, {hardlink_entry("h", "../outside/sentinel")}, "h"},
      {"hard link to a file the archive lacks", Format::kTar, {hardlink_entry("h", "elsewhere")}, "h"},
      {"hard link to a symlink", Format::kTar, {symlink_entry("s", "."), hardlink_entry("d/h", "s")}, "d/h"},
      {"character device", Format::kTar, {RawEntry{"null", AE_IFCHR, "", "", "", 0666}}, "null"},
      {"fifo", Format::kTar, {RawEntry{"pipe", AE_IFIFO, "", "", "", 0644}}, "pipe"},
  };
}

TEST_F(ArchiveTest, RefusesHostileArchivesAndWritesNothing) {
  const fs::path outside = root() / "outside";
  put_file(outside / "sentinel", "original");
  for (const HostileCase& hostile : hostile_cases(outside)) {
    SCOPED_TRACE(hostile.label);
    const fs::path path = root() / "hostile.archive";
    write_raw_archive(path, hostile.format, hostile.entries);

    auto files = list_files(path);
    ASSERT_FALSE(files.ok());
    EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(files.status().message(), path.string()));
    EXPECT_TRUE(mentions(files.status().message(), "\"" + hostile.offending + "\""));

    const fs::path destination = root() / "destination";
    absl::Status status = extract(path, destination);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(status.message(), files.status().message());
    EXPECT_TRUE(tree_names(destination).empty());
    EXPECT_EQ(tree_names(outside), (Names{"sentinel"}));
    EXPECT_EQ(get_file(outside / "sentinel"), "original");
    EXPECT_FALSE(fs::exists(root() / "evil"));
    fs::remove_all(destination);
  }
}

TEST_F(ArchiveTest, NonArchiveIsAClearError) {
  const fs::path path = root() / "noise.tar";
  put_file(path, binary_bytes(100000, 5));
  for (const absl::Status& status : {list_files(path).status(), extract(path, root() / "out")}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(status.message(), path.string()));
    EXPECT_TRUE(mentions(status.message(), "not a readable tar or zip archive"));
  }
  put_file(path, "");
  EXPECT_TRUE(mentions(list_files(path).status().message(), "not a readable tar or zip archive"));
}

TEST_F(ArchiveTest, TruncatedOrCorruptArchivesAreClearErrors) {
  const std::vector<RawEntry> entries = {file_entry("big.bin", binary_bytes(200000, 6))};
  for (Format format : {Format::kTar, Format::kTarGz, Format::kZip}) {
    const fs::path path = root() / "whole.archive";
    write_raw_archive(path, format, entries);
    std::string bytes = get_file(path);
    put_file(path, bytes.substr(0, bytes.size() / 2));
    absl::Status status = list_files(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << static_cast<int>(format);
    EXPECT_TRUE(mentions(status.message(), "not a readable tar or zip archive"));
  }
  const fs::path tar = root() / "corrupt.tar";
  write_raw_archive(tar, Format::kTar, {file_entry("a.txt", "a"), file_entry("b.txt", "b")});
  std::string tar_bytes = get_file(tar);
  for (size_t i = 1024; i < 1124; ++i) tar_bytes[i] = static_cast<char>(~tar_bytes[i]);  // second header
  put_file(tar, tar_bytes);
  EXPECT_TRUE(mentions(list_files(tar).status().message(), "not a readable tar or zip archive"));

  // Zip carries a CRC per entry, which only reading the data checks. (Gzip
  // has one too, but libarchive does not verify it.)
  const fs::path zip = root() / "corrupt.zip";
  write_raw_archive(zip, Format::kZip, entries);
  std::string zip_bytes = get_file(zip);
  for (size_t i = 1000; i < 1064; ++i) zip_bytes[i] = static_cast<char>(~zip_bytes[i]);
  put_file(zip, zip_bytes);
  EXPECT_TRUE(mentions(list_files(zip).status().message(), "not a readable tar or zip archive"));
  EXPECT_TRUE(mentions(extract(zip, root() / "out").message(), "not a readable tar or zip archive"));
}

TEST_F(ArchiveTest, MissingArchiveIsAnError) {
  auto files = list_files(root() / "absent.tar");
  ASSERT_FALSE(files.ok());
  EXPECT_TRUE(mentions(files.status().message(), "absent.tar"));
}

}  // namespace
}  // namespace pesc::archive
