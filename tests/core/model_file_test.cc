// The model file (core/model_file.h): exact round trips, atomic writes, and
// the rejection of every kind of damaged file with DATA_LOSS.
#include "core/model_file.h"

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/shape.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Offsets fixed by the format (model_file.h and the layout in model_file.cc).
constexpr size_t kHeaderBytes = 20;
constexpr size_t kVersionOffset = 8;
constexpr size_t kPayloadLengthOffset = 12;
constexpr size_t kKOffset = kHeaderBytes;
constexpr size_t kParameterCountOffset = kHeaderBytes + 4;
constexpr size_t kParametersOffset = kHeaderBytes + 12;
// From the start of the metadata (just after the parameters):
constexpr size_t kTrainedFromMetadata = 0;
constexpr size_t kCostFromMetadata = 1 + 4 + 4 + 8 + 8;
constexpr size_t kTrainDatasetLengthFromMetadata = kCostFromMetadata + 4 + 8 + 4;

size_t MetadataOffset(int k) { return kParametersOffset + 4 * ParameterCount(k); }

// Parameters whose values exercise the float encoding: signed zeros, the
// smallest subnormal, the extremes, and a spread of ordinary values.
Parameters PatternParameters(int k) {
  std::vector<float> flat(ParameterCount(k));
  std::mt19937 random(k);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : flat) v = normal(random);
  flat[0] = -0.0f;
  flat[1] = 0.0f;
  flat[2] = std::numeric_limits<float>::denorm_min();
  flat[3] = std::numeric_limits<float>::max();
  flat[4] = std::numeric_limits<float>::lowest();
  flat[5] = 1.0f / 3.0f;
  absl::StatusOr<Parameters> params = Parameters::FromFlat(k, flat);
  EXPECT_TRUE(params.ok()) << params.status();
  return *std::move(params);
}

// A model with every metadata field set to something other than its default.
Model FullModel(int k = 1) {
  ModelMetadata m;
  m.trained = true;
  m.options.epochs = 30;
  m.options.batch_size = 17;
  m.options.learning_rate = 0.125;
  m.options.l2 = 5.0e-5;
  m.options.cost = Cost::kQuadratic;
  m.options.seed = 0xfedcba9876543210ull;
  m.options.progress_every = 2500;
  m.train_dataset = std::string("mnist\0with nul and \xc3\xa9", 22);
  m.train_examples = 60000;
  m.init_from = "digits/3";
  m.init_seed = 0x8000000000000001ull;
  m.epochs = {
      {1, 0.75, 0.9012, 0.5, 10000, 12.5},
      {2, 0.25, 0.9534, 0.125, 10000, 11.0},
      {3, 1.0 / 3.0, 1.0, 0.0, 0, 0.001},
  };
  m.created_unix_ms = 1732770000123;
  m.train_started_unix_ms = std::numeric_limits<int64_t>::min();
  m.train_finished_unix_ms = std::numeric_limits<int64_t>::max();
  return Model{PatternParameters(k), m};
}

void ExpectBitIdentical(const Parameters& a, const Parameters& b) {
  EXPECT_EQ(a.k(), b.k());
  ASSERT_EQ(a.flat().size(), b.flat().size());
  EXPECT_EQ(std::memcmp(a.flat().data(), b.flat().data(), a.flat().size() * sizeof(float)), 0);
}

void ExpectSameModel(const Model& a, const Model& b) {
  ExpectBitIdentical(a.parameters, b.parameters);
  const ModelMetadata& x = a.metadata;
  const ModelMetadata& y = b.metadata;
  EXPECT_EQ(x.trained, y.trained);
  EXPECT_EQ(x.options.epochs, y.options.epochs);
  EXPECT_EQ(x.options.batch_size, y.options.batch_size);
  EXPECT_EQ(x.options.learning_rate, y.options.learning_rate);
  EXPECT_EQ(x.options.l2, y.options.l2);
  EXPECT_EQ(x.options.cost, y.options.cost);
  EXPECT_EQ(x.options.seed, y.options.seed);
  EXPECT_EQ(x.options.progress_every, y.options.progress_every);
  EXPECT_EQ(x.train_dataset, y.train_dataset);
  EXPECT_EQ(x.train_examples, y.train_examples);
  EXPECT_EQ(x.init_from, y.init_from);
  EXPECT_EQ(x.init_seed, y.init_seed);
  ASSERT_EQ(x.epochs.size(), y.epochs.size());
  for (size_t i = 0; i < x.epochs.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(x.epochs[i].epoch, y.epochs[i].epoch);
    EXPECT_EQ(x.epochs[i].train_cost, y.epochs[i].train_cost);
    EXPECT_EQ(x.epochs[i].test_accuracy, y.epochs[i].test_accuracy);
    EXPECT_EQ(x.epochs[i].test_cost, y.epochs[i].test_cost);
    EXPECT_EQ(x.epochs[i].test_examples, y.epochs[i].test_examples);
    EXPECT_EQ(x.epochs[i].seconds, y.epochs[i].seconds);
  }
  EXPECT_EQ(x.created_unix_ms, y.created_unix_ms);
  EXPECT_EQ(x.train_started_unix_ms, y.train_started_unix_ms);
  EXPECT_EQ(x.train_finished_unix_ms, y.train_finished_unix_ms);
}

void PutLittle(std::string* bytes, size_t offset, uint64_t value, int size) {
  for (int i = 0; i < size; ++i) (*bytes)[offset + i] = static_cast<char>(value >> (8 * i));
}
uint64_t GetLittle(const std::string& bytes, size_t offset, int size) {
  uint64_t v = 0;
  for (int i = 0; i < size; ++i) v |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  return v;
}

uint32_t Crc(const std::string& bytes, size_t length) {
  return static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), length));
}

// Rewrites the payload length and the trailing CRC so that a deliberately
// inconsistent payload gets past the envelope checks.
void Reseal(std::string* bytes) {
  const size_t payload_length = bytes->size() - kHeaderBytes - 4;
  PutLittle(bytes, kPayloadLengthOffset, payload_length, 8);
  PutLittle(bytes, bytes->size() - 4, Crc(*bytes, bytes->size() - 4), 4);
}

// The bytes of a model that is known to be encodable.
std::string Encoded(const Model& model) {
  absl::StatusOr<std::string> bytes = EncodeModel(model);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *std::move(bytes) : std::string();
}

// A valid model with one parameter replaced by `value`.
Model ModelWithParameter(size_t index, float value) {
  Model model{*Parameters::Zeros(1), ModelMetadata{}};
  model.parameters.mutable_flat()[index] = value;
  return model;
}

void ExpectDataLoss(absl::string_view bytes, const std::string& fragment) {
  absl::StatusOr<Model> model = DecodeModel(bytes);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
  EXPECT_THAT(std::string(model.status().message()), HasSubstr(fragment));
}

// ---- Encoding and decoding in memory

TEST(ModelFileTest, EncodingStartsWithMagicVersionAndPayloadLength) {
  const std::string bytes = Encoded(FullModel());
  EXPECT_EQ(bytes.substr(0, 8), "CNVNMODL");
  EXPECT_EQ(GetLittle(bytes, kVersionOffset, 4), kModelFormatVersion);
  EXPECT_EQ(GetLittle(bytes, kPayloadLengthOffset, 8), bytes.size() - kHeaderBytes - 4);
  EXPECT_EQ(GetLittle(bytes, kKOffset, 4), 1u);
  EXPECT_EQ(GetLittle(bytes, kParameterCountOffset, 8), ParameterCount(1));
  EXPECT_EQ(GetLittle(bytes, bytes.size() - 4, 4), Crc(bytes, bytes.size() - 4));
}

TEST(ModelFileTest, ParametersAreLittleEndianFloatBits) {
  const std::string bytes = Encoded(FullModel());
  EXPECT_EQ(GetLittle(bytes, kParametersOffset, 4), 0x80000000u);      // -0.0f
  EXPECT_EQ(GetLittle(bytes, kParametersOffset + 12, 4), 0x7f7fffffu);  // FLT_MAX
}

TEST(ModelFileTest, RoundTripsEveryFieldExactly) {
  const Model model = FullModel();
  absl::StatusOr<Model> decoded = DecodeModel(Encoded(model));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameModel(*decoded, model);
}

TEST(ModelFileTest, RoundTripsDefaultMetadata) {
  const Model model{PatternParameters(3), ModelMetadata{}};
  absl::StatusOr<Model> decoded = DecodeModel(Encoded(model));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameModel(*decoded, model);
  EXPECT_FALSE(decoded->metadata.trained);
  EXPECT_THAT(decoded->metadata.epochs, IsEmpty());
  EXPECT_EQ(decoded->metadata.options.cost, Cost::kCrossEntropy);
}

TEST(ModelFileTest, RoundTripsSmallestAndLargestK) {
  for (int k : {kMinMaps, kMaxMaps}) {
    SCOPED_TRACE(k);
    const Model model = FullModel(k);
    absl::StatusOr<Model> decoded = DecodeModel(Encoded(model));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectSameModel(*decoded, model);
  }
}

TEST(ModelFileTest, EncodingIsDeterministic) {
  EXPECT_EQ(Encoded(FullModel(2)), Encoded(FullModel(2)));
}

TEST(ModelFileTest, EncodingRefusesNonFiniteParametersNamingTheIndex) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<std::string> bytes = EncodeModel(ModelWithParameter(7, bad));
    ASSERT_FALSE(bytes.ok());
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("parameter 7 is not finite"));
  }
}

// ---- Damaged bytes

TEST(ModelFileTest, RejectsTruncationAtEveryKindOfLength) {
  const std::string bytes = Encoded(FullModel());
  for (size_t length : {size_t{0}, size_t{1}, size_t{8}, size_t{19}, size_t{23}, size_t{24},
                        kParametersOffset + 1, bytes.size() / 2, bytes.size() - 4,
                        bytes.size() - 1}) {
    SCOPED_TRACE(length);
    ExpectDataLoss(bytes.substr(0, length), "truncated");
    ExpectDataLoss(bytes.substr(0, length), absl::StrCat("got ", length));
  }
}

TEST(ModelFileTest, TruncationMessageNamesExpectedLength) {
  const std::string bytes = Encoded(FullModel());
  ExpectDataLoss(bytes.substr(0, bytes.size() - 1),
                 absl::StrCat(bytes.size(), " bytes expected, got ", bytes.size() - 1));
  ExpectDataLoss("", "expected at least 24 bytes, got 0");
}

TEST(ModelFileTest, RejectsWrongMagic) {
  std::string bytes = Encoded(FullModel());
  bytes[0] = 'X';
  ExpectDataLoss(bytes, "wrong magic");
}

TEST(ModelFileTest, RejectsUnsupportedVersionNamingIt) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kVersionOffset, 2, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "unsupported model format version 2");
  PutLittle(&bytes, kVersionOffset, 0, 4);
  ExpectDataLoss(bytes, "unsupported model format version 0");
}

TEST(ModelFileTest, RejectsKZero) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kKOffset, 0, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "K: feature_maps must be in 1..64, got 0");
}

TEST(ModelFileTest, RejectsK65) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kKOffset, 65, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "K: feature_maps must be in 1..64, got 65");
}

TEST(ModelFileTest, RejectsParameterCountThatDoesNotMatchK) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kParameterCountOffset, ParameterCount(1) + 1, 8);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "parameter count 1477 does not match K = 1 (expected 1476)");
}

TEST(ModelFileTest, RejectsKThatDoesNotMatchParameterCount) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kKOffset, 2, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, absl::StrCat("parameter count 1476 does not match K = 2 (expected ",
                                     ParameterCount(2), ")"));
}

TEST(ModelFileTest, RejectsHugeParameterCountWithoutAllocating) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kParameterCountOffset, std::numeric_limits<uint64_t>::max(), 8);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "does not match K = 1");
}

TEST(ModelFileTest, RejectsChecksumMismatchNamingBothChecksums) {
  std::string bytes = Encoded(FullModel());
  const uint32_t stored = static_cast<uint32_t>(GetLittle(bytes, bytes.size() - 4, 4));
  bytes[bytes.size() / 2] ^= 0x10;
  const uint32_t computed = Crc(bytes, bytes.size() - 4);
  ExpectDataLoss(bytes, "checksum mismatch");
  ExpectDataLoss(bytes, absl::StrFormat("stored CRC-32 0x%08x, computed 0x%08x", stored, computed));
}

TEST(ModelFileTest, RejectsFlippedChecksumByte) {
  std::string bytes = Encoded(FullModel());
  bytes.back() ^= 0x01;
  ExpectDataLoss(bytes, "checksum mismatch");
}

TEST(ModelFileTest, RejectsTrailingBytesAfterChecksum) {
  std::string bytes = Encoded(FullModel());
  bytes.push_back('\0');
  ExpectDataLoss(bytes, "1 trailing bytes");
}

TEST(ModelFileTest, RejectsTrailingBytesInsidePayload) {
  std::string bytes = Encoded(FullModel());
  bytes.insert(bytes.size() - 4, "extra");
  Reseal(&bytes);
  ExpectDataLoss(bytes, "payload has 5 trailing bytes");
}

TEST(ModelFileTest, RejectsPayloadThatEndsBeforeItsLastField) {
  std::string bytes = Encoded(FullModel());
  bytes.erase(bytes.size() - 4 - 3, 3);  // cut into train_finished_unix_ms
  Reseal(&bytes);
  ExpectDataLoss(bytes, "payload truncated: train_finished_unix_ms needs 8 bytes");
}

TEST(ModelFileTest, RejectsPayloadLengthNearTwoToThe64) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kPayloadLengthOffset, std::numeric_limits<uint64_t>::max(), 8);
  ExpectDataLoss(bytes, "truncated");
  ExpectDataLoss(bytes, "18446744073709551615 + 24 bytes expected");
}

TEST(ModelFileTest, RejectsNaNParameterNamingItsIndex) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kParametersOffset + 4 * 7, 0x7fc00000u, 4);  // quiet NaN
  Reseal(&bytes);
  ExpectDataLoss(bytes, "parameter 7 is not finite");
}

TEST(ModelFileTest, RejectsInfiniteParameter) {
  std::string bytes = Encoded(FullModel());
  PutLittle(&bytes, kParametersOffset + 4 * 1475, 0xff800000u, 4);  // -inf, the last one
  Reseal(&bytes);
  ExpectDataLoss(bytes, "parameter 1475 is not finite");
}

TEST(ModelFileTest, RejectsTrainedFlagOtherThanZeroOrOne) {
  std::string bytes = Encoded(FullModel());
  bytes[MetadataOffset(1) + kTrainedFromMetadata] = 2;
  Reseal(&bytes);
  ExpectDataLoss(bytes, "trained flag must be 0 or 1, got 2");
}

TEST(ModelFileTest, RejectsUnknownCost) {
  std::string bytes = Encoded(FullModel());
  ASSERT_EQ(GetLittle(bytes, MetadataOffset(1) + kCostFromMetadata, 4), 0u);  // quadratic
  PutLittle(&bytes, MetadataOffset(1) + kCostFromMetadata, 9, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "options.cost 9 is not a known cost");
}

TEST(ModelFileTest, RejectsStringLengthPastTheEnd) {
  std::string bytes = Encoded(FullModel());
  const size_t offset = MetadataOffset(1) + kTrainDatasetLengthFromMetadata;
  ASSERT_EQ(GetLittle(bytes, offset, 4), 22u);  // FullModel's train_dataset
  PutLittle(&bytes, offset, 0xffffffffu, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "string train_dataset of 4294967295 bytes runs past the end");
}

TEST(ModelFileTest, RejectsEpochCountPastTheEnd) {
  const Model model = FullModel();
  std::string bytes = Encoded(model);
  const size_t offset = MetadataOffset(1) + kTrainDatasetLengthFromMetadata + 4 +
                        model.metadata.train_dataset.size() + 8 + 4 +
                        model.metadata.init_from.size() + 8;
  ASSERT_EQ(GetLittle(bytes, offset, 4), 3u);  // FullModel's epochs
  PutLittle(&bytes, offset, 4, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "4 epoch records (176 bytes) run past the end");
  PutLittle(&bytes, offset, 0xffffffffu, 4);
  Reseal(&bytes);
  ExpectDataLoss(bytes, "4294967295 epoch records");
}

// The decoder must survive any bytes: mutate and truncate a valid file at
// random, resealing it so that most mutations reach the payload parser.
TEST(ModelFileTest, DecodeNeverFailsHardOnMutatedBytes) {
  const std::string original = Encoded(FullModel());
  std::mt19937 random(12345);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = original;
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < mutations; ++i) {
      // Favour the header and the metadata, where the lengths live.
      const size_t region = random() % 3;
      size_t at = region == 0   ? random() % 40
                  : region == 1 ? MetadataOffset(1) + random() % (bytes.size() - MetadataOffset(1))
                                : random() % bytes.size();
      at = std::min(at, bytes.size() - 1);
      bytes[at] = static_cast<char>(random());
    }
    if (random() % 4 == 0) bytes.resize(random() % (bytes.size() + 1));
    if (bytes.size() >= 24 && random() % 2 == 0) {
      PutLittle(&bytes, bytes.size() - 4, Crc(bytes, bytes.size() - 4), 4);
    }
    absl::StatusOr<Model> model = DecodeModel(bytes);
    if (!model.ok()) {
      EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
    }
  }
}

// ---- Files

class ModelFileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "model_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add);
    std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> DirectoryEntries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(ModelFileIoTest, WriteThenReadRoundTripsExactly) {
  const std::string path = dir_ + "/model.bin";
  const Model model = FullModel(4);
  ASSERT_TRUE(WriteModelFile(path, model).ok());
  absl::StatusOr<Model> read = ReadModelFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSameModel(*read, model);
}

TEST_F(ModelFileIoTest, FileHoldsExactlyTheEncoding) {
  const std::string path = dir_ + "/model.bin";
  const Model model = FullModel();
  ASSERT_TRUE(WriteModelFile(path, model).ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  EXPECT_EQ(contents.str(), Encoded(model));
}

TEST_F(ModelFileIoTest, WriteLeavesNoTemporaryFile) {
  ASSERT_TRUE(WriteModelFile(dir_ + "/model.bin", FullModel()).ok());
  EXPECT_THAT(DirectoryEntries(), testing::ElementsAre("model.bin"));
}

TEST_F(ModelFileIoTest, WriteRefusesNonFiniteParametersAndWritesNothing) {
  const absl::Status status =
      WriteModelFile(dir_ + "/model.bin", ModelWithParameter(3, std::numeric_limits<float>::quiet_NaN()));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("parameter 3 is not finite"));
  EXPECT_THAT(DirectoryEntries(), IsEmpty());
}

TEST_F(ModelFileIoTest, WriteReplacesAnExistingFile) {
  const std::string path = dir_ + "/model.bin";
  std::ofstream(path) << "an older, unrelated file";
  ASSERT_TRUE(WriteModelFile(path, FullModel(1)).ok());
  const Model second{PatternParameters(2), ModelMetadata{}};
  ASSERT_TRUE(WriteModelFile(path, second).ok());
  absl::StatusOr<Model> read = ReadModelFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSameModel(*read, second);
  EXPECT_THAT(DirectoryEntries(), testing::ElementsAre("model.bin"));
}

TEST_F(ModelFileIoTest, WriteWithoutDirectoryComponentUsesCurrentDirectory) {
  const std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  const absl::Status status = WriteModelFile("model.bin", FullModel());
  std::filesystem::current_path(previous);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(DirectoryEntries(), testing::ElementsAre("model.bin"));
}

TEST_F(ModelFileIoTest, WriteIntoMissingDirectoryFailsNamingThePath) {
  const std::string path = dir_ + "/no/such/dir/model.bin";
  const absl::Status status = WriteModelFile(path, FullModel());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(path), HasSubstr("No such file or directory")));
  EXPECT_THAT(DirectoryEntries(), IsEmpty());
}

TEST_F(ModelFileIoTest, FailedRenameRemovesTheTemporaryFile) {
  // The target is a non-empty directory, so the final rename fails after the
  // temporary file has been written.
  const std::string path = dir_ + "/model.bin";
  std::filesystem::create_directories(path + "/occupied");
  const absl::Status status = WriteModelFile(path, FullModel());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(path), HasSubstr("rename")));
  EXPECT_THAT(DirectoryEntries(), testing::ElementsAre("model.bin"));
}

TEST_F(ModelFileIoTest, WriteIntoReadOnlyDirectoryIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_exec);
  const std::string path = dir_ + "/model.bin";
  const absl::Status status = WriteModelFile(path, FullModel());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

TEST_F(ModelFileIoTest, ReadingMissingFileIsNotFoundNamingThePath) {
  const std::string path = dir_ + "/absent.bin";
  const absl::Status status = ReadModelFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

TEST_F(ModelFileIoTest, ReadingCorruptFileIsDataLossPrefixedWithThePath) {
  const std::string path = dir_ + "/model.bin";
  std::string bytes = Encoded(FullModel());
  bytes[bytes.size() / 2] ^= 0x01;
  std::ofstream(path, std::ios::binary) << bytes;
  const absl::Status status = ReadModelFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(StartsWith(path + ": "), HasSubstr("checksum mismatch")));
}

TEST_F(ModelFileIoTest, ReadingEmptyFileIsDataLoss) {
  const std::string path = dir_ + "/empty.bin";
  std::ofstream(path, std::ios::binary).flush();
  EXPECT_EQ(ReadModelFile(path).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace convnet
