// The IDX reader and writer (core/idx.h): round trips, plain and gzip files,
// and the rejection of every kind of damaged file.
#include "core/idx.h"

#include <stdlib.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/shape.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/temp_dir_test.h"
#include "tests/core/test_gzip.h"

namespace convnet {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Gzip;

// n images whose pixels follow a recognisable pattern.
std::vector<uint8_t> PatternImages(size_t n) {
  std::vector<uint8_t> images(n * kPixels);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 7 + i / 784);
  return images;
}


// Replaces the big-endian u32 at `offset`.
void PutBigEndian32(std::string* bytes, size_t offset, uint32_t value) {
  (*bytes)[offset] = static_cast<char>(value >> 24);
  (*bytes)[offset + 1] = static_cast<char>(value >> 16);
  (*bytes)[offset + 2] = static_cast<char>(value >> 8);
  (*bytes)[offset + 3] = static_cast<char>(value);
}

void ExpectInvalid(const absl::Status& status, const std::string& fragment) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(fragment));
}

// ---- Encoding and parsing in memory

TEST(IdxTest, EncodeIdxImagesWritesBigEndianHeader) {
  const std::string bytes = EncodeIdxImages(PatternImages(2));
  ASSERT_EQ(bytes.size(), 16u + 2 * kPixels);
  EXPECT_EQ(bytes.substr(0, 16), std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x1c\0\0\0\x1c", 16));
}

TEST(IdxTest, EncodeIdxLabelsWritesBigEndianHeader) {
  const std::string bytes = EncodeIdxLabels({3, 1, 4});
  EXPECT_EQ(bytes, std::string("\0\0\x08\x01\0\0\0\x03\x03\x01\x04", 11));
}

TEST(IdxTest, ImagesRoundTrip) {
  const std::vector<uint8_t> images = PatternImages(3);
  absl::StatusOr<std::vector<uint8_t>> parsed = ParseIdxImages(EncodeIdxImages(images));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, images);
}

TEST(IdxTest, LabelsRoundTrip) {
  const std::vector<uint8_t> labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5};
  absl::StatusOr<std::vector<uint8_t>> parsed = ParseIdxLabels(EncodeIdxLabels(labels));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, labels);
}

TEST(IdxTest, EmptySetsRoundTrip) {
  absl::StatusOr<std::vector<uint8_t>> images = ParseIdxImages(EncodeIdxImages({}));
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_TRUE(images->empty());
  absl::StatusOr<std::vector<uint8_t>> labels = ParseIdxLabels(EncodeIdxLabels({}));
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_TRUE(labels->empty());
}

TEST(IdxTest, RejectsShortImagesHeader) {
  ExpectInvalid(ParseIdxImages("").status(), "needs 16 bytes, got 0");
  ExpectInvalid(ParseIdxImages(EncodeIdxImages({}).substr(0, 15)).status(),
                "needs 16 bytes, got 15");
}

TEST(IdxTest, RejectsShortLabelsHeader) {
  ExpectInvalid(ParseIdxLabels("").status(), "needs 8 bytes, got 0");
  ExpectInvalid(ParseIdxLabels(EncodeIdxLabels({}).substr(0, 7)).status(),
                "needs 8 bytes, got 7");
}

TEST(IdxTest, RejectsLabelsMagicInImagesFile) {
  std::string bytes = EncodeIdxImages(PatternImages(1));
  PutBigEndian32(&bytes, 0, kIdxLabelsMagic);
  ExpectInvalid(ParseIdxImages(bytes).status(),
                "images magic must be 0x00000803, got 0x00000801");
}

TEST(IdxTest, RejectsImagesMagicInLabelsFile) {
  std::string bytes = EncodeIdxLabels({1, 2});
  PutBigEndian32(&bytes, 0, kIdxImagesMagic);
  ExpectInvalid(ParseIdxLabels(bytes).status(),
                "labels magic must be 0x00000801, got 0x00000803");
}

TEST(IdxTest, RejectsArbitraryMagic) {
  std::string images = EncodeIdxImages(PatternImages(1));
  PutBigEndian32(&images, 0, 0xdeadbeef);
  ExpectInvalid(ParseIdxImages(images).status(), "got 0xdeadbeef");
  std::string labels = EncodeIdxLabels({1});
  PutBigEndian32(&labels, 0, 0x03080000);  // the images magic, little-endian
  ExpectInvalid(ParseIdxLabels(labels).status(), "got 0x03080000");
}

TEST(IdxTest, RejectsImagesThatAreNot28By28) {
  std::string bytes = EncodeIdxImages(PatternImages(1));
  PutBigEndian32(&bytes, 12, 27);
  ExpectInvalid(ParseIdxImages(bytes).status(), "must be 28x28, got 28x27");
  PutBigEndian32(&bytes, 8, 32);
  PutBigEndian32(&bytes, 12, 28);
  ExpectInvalid(ParseIdxImages(bytes).status(), "must be 28x28, got 32x28");
}

TEST(IdxTest, RejectsTruncatedImagesBody) {
  std::string bytes = EncodeIdxImages(PatternImages(2));
  bytes.pop_back();
  ExpectInvalid(ParseIdxImages(bytes).status(),
                "truncated: the header says 2 images (1568 bytes) but only 1567 bytes");
}

TEST(IdxTest, RejectsImagesBodyWithTrailingBytes) {
  std::string bytes = EncodeIdxImages(PatternImages(2));
  bytes += "xyz";
  ExpectInvalid(ParseIdxImages(bytes).status(), "has 3 trailing bytes");
}

TEST(IdxTest, RejectsImagesCountFarBeyondBodyWithoutOverflow) {
  std::string bytes = EncodeIdxImages(PatternImages(1));
  PutBigEndian32(&bytes, 4, 0xffffffff);
  ExpectInvalid(ParseIdxImages(bytes).status(), "the header says 4294967295 images");
}

TEST(IdxTest, RejectsTruncatedLabelsBody) {
  std::string bytes = EncodeIdxLabels({1, 2, 3});
  bytes.pop_back();
  ExpectInvalid(ParseIdxLabels(bytes).status(),
                "truncated: the header says 3 labels (3 bytes) but only 2 bytes");
}

TEST(IdxTest, RejectsLabelsBodyWithTrailingBytes) {
  std::string bytes = EncodeIdxLabels({1, 2, 3});
  bytes.push_back('\x01');
  ExpectInvalid(ParseIdxLabels(bytes).status(), "has 1 trailing bytes");
}

TEST(IdxTest, RejectsLabelTenNamingIndexAndValue) {
  ExpectInvalid(ParseIdxLabels(EncodeIdxLabels({0, 9, 10, 3})).status(),
                "label at index 2 is 10, outside 0..9");
}

TEST(IdxTest, RejectsLabel255) {
  ExpectInvalid(ParseIdxLabels(EncodeIdxLabels({255})).status(),
                "label at index 0 is 255");
}

// ---- Files

class IdxFileTest : public testing::TempDirTest {};

TEST_F(IdxFileTest, ReadsPlainImagesFile) {
  const std::vector<uint8_t> images = PatternImages(4);
  absl::StatusOr<std::vector<uint8_t>> read =
      ReadIdxImages(Write("images", EncodeIdxImages(images)));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, images);
}

TEST_F(IdxFileTest, ReadsGzipImagesFile) {
  const std::vector<uint8_t> images = PatternImages(4);
  absl::StatusOr<std::vector<uint8_t>> read =
      ReadIdxImages(Write("images.gz", Gzip(EncodeIdxImages(images))));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, images);
}

TEST_F(IdxFileTest, ReadsPlainLabelsFile) {
  absl::StatusOr<std::vector<uint8_t>> read = ReadIdxLabels(Write("labels", EncodeIdxLabels({7, 2})));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, ElementsAre(7, 2));
}

TEST_F(IdxFileTest, ReadsGzipLabelsFile) {
  absl::StatusOr<std::vector<uint8_t>> read =
      ReadIdxLabels(Write("labels.gz", Gzip(EncodeIdxLabels({7, 2, 1}))));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, ElementsAre(7, 2, 1));
}

TEST_F(IdxFileTest, GzipIsDetectedByMagicNotByName) {
  absl::StatusOr<std::string> read = ReadMaybeGzipFile(Write("no_suffix", Gzip("hello")));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "hello");
}

TEST_F(IdxFileTest, PlainFileIsReturnedAsIs) {
  const std::string bytes("\x1f\x00\x8b plain\n", 9);  // first byte of the magic only
  absl::StatusOr<std::string> read = ReadMaybeGzipFile(Write("plain.gz", bytes));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
}

TEST_F(IdxFileTest, EmptyFileReadsAsEmpty) {
  absl::StatusOr<std::string> read = ReadMaybeGzipFile(Write("empty", ""));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST_F(IdxFileTest, ConcatenatedGzipMembersAreJoined) {
  absl::StatusOr<std::string> read =
      ReadMaybeGzipFile(Write("two.gz", Gzip("first ") + Gzip("second")));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "first second");
}

TEST_F(IdxFileTest, MissingFileIsNotFoundNamingPath) {
  const std::string path = dir_ + "/does-not-exist";
  absl::Status status = ReadIdxImages(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_EQ(ReadMaybeGzipFile(path).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IdxFileTest, DirectoryIsAnErrorNamingPath) {
  absl::Status status = ReadMaybeGzipFile(dir_).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(dir_));
}

TEST_F(IdxFileTest, TruncatedGzipIsDataLoss) {
  const std::string gz = Gzip(EncodeIdxImages(PatternImages(3)));
  // Cut inside the 10-byte gzip header, inside the deflate data, and
  // inside the 8-byte CRC/length trailer.
  for (size_t length : {size_t{2}, size_t{9}, gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
    SCOPED_TRACE(length);
    const std::string path = Write("cut.gz", gz.substr(0, length));
    absl::Status status = ReadIdxImages(path).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(path), HasSubstr("truncated gzip")));
  }
}

TEST_F(IdxFileTest, CorruptGzipDataIsDataLoss) {
  std::string gz = Gzip(EncodeIdxImages(PatternImages(3)));
  for (size_t i = gz.size() / 3; i < gz.size() / 3 + 16; ++i) gz[i] = static_cast<char>(~gz[i]);
  const std::string path = Write("corrupt.gz", gz);
  absl::Status status = ReadIdxImages(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(path), HasSubstr("gzip")));
}

TEST_F(IdxFileTest, GzipChecksumMismatchIsDataLoss) {
  std::string gz = Gzip(EncodeIdxLabels({1, 2, 3}));
  gz[gz.size() - 8] ^= 0x01;  // first byte of the CRC-32 trailer
  const std::string path = Write("badcrc.gz", gz);
  absl::Status status = ReadIdxLabels(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(path), HasSubstr("corrupt gzip stream"), HasSubstr("incorrect data check")));
}

TEST_F(IdxFileTest, UnknownGzipCompressionMethodIsDataLoss) {
  std::string gz = Gzip(EncodeIdxLabels({1}));
  gz[2] = 7;  // only 8 (deflate) exists
  absl::Status status = ReadIdxLabels(Write("method.gz", gz)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("corrupt gzip stream"));
}

TEST_F(IdxFileTest, GarbageAfterGzipIsDataLoss) {
  absl::Status status = ReadIdxLabels(Write("tail.gz", Gzip(EncodeIdxLabels({1})) + "junk")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("4 bytes of garbage"));
}

TEST_F(IdxFileTest, ParseErrorsArePrefixedWithPath) {
  const std::string path = Write("labels.gz", Gzip(EncodeIdxLabels({4, 10})));
  absl::Status status = ReadIdxLabels(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(path + ": "), HasSubstr("label at index 1 is 10")));
}

TEST_F(IdxFileTest, ImagesReaderRejectsLabelsFile) {
  const std::string path = Write("labels", EncodeIdxLabels({1, 2}));
  absl::Status status = ReadIdxImages(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ": "));
}

}  // namespace
}  // namespace convnet
