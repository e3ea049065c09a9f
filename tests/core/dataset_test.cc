// Datasets and dataset directories (core/dataset.h), including the bundled
// MNIST files in data/mnist.
#include "core/dataset.h"

#include <stdlib.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/idx.h"
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

const char kBundledMnist[] = CONVNET_DATA_DIR "/mnist";

std::vector<uint8_t> ConstantImages(size_t n, uint8_t value) {
  return std::vector<uint8_t>(n * kPixels, value);
}


// ---- The bundled MNIST (loaded once: it is 55 MB uncompressed)

class BundledMnistTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<MnistDirectory> loaded = LoadMnistDirectory(kBundledMnist);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    mnist_ = new MnistDirectory(*std::move(loaded));
  }
  static void TearDownTestSuite() {
    delete mnist_;
    mnist_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(mnist_, nullptr); }

  static MnistDirectory* mnist_;
};
MnistDirectory* BundledMnistTest::mnist_ = nullptr;

TEST_F(BundledMnistTest, IsAnMnistDirectory) { EXPECT_TRUE(IsMnistDirectory(kBundledMnist)); }

TEST_F(BundledMnistTest, Has60000TrainingAnd10000TestExamples) {
  EXPECT_EQ(mnist_->train.size(), 60000u);
  EXPECT_EQ(mnist_->train.images.size(), 60000u * kPixels);
  EXPECT_EQ(mnist_->test.size(), 10000u);
  EXPECT_EQ(mnist_->test.images.size(), 10000u * kPixels);
}

TEST_F(BundledMnistTest, FirstTrainingLabelIs5AndFirstTestLabelIs7) {
  EXPECT_EQ(mnist_->train.labels[0], 5);
  EXPECT_EQ(mnist_->test.labels[0], 7);
}

TEST_F(BundledMnistTest, EveryDigitOccursInBothSets) {
  for (const Dataset* set : {&mnist_->train, &mnist_->test}) {
    std::vector<int> counts(kClasses, 0);
    for (uint8_t label : set->labels) ++counts[label];
    for (int digit = 0; digit < kClasses; ++digit) EXPECT_GT(counts[digit], 0) << digit;
  }
}

TEST_F(BundledMnistTest, ImagesHaveBlankCornersAndInkInTheMiddle) {
  const absl::Span<const uint8_t> first = mnist_->train.image(0);
  EXPECT_EQ(first[0], 0);
  EXPECT_EQ(first[kPixels - 1], 0);
  int ink = 0;
  for (uint8_t pixel : first) ink += pixel > 0;
  EXPECT_GT(ink, 50);
}

// ---- Dataset directories built in a temporary directory

class DatasetDirectoryTest : public testing::TempDirTest {
 protected:

  // A small valid dataset: 3 training and 2 test examples, gzip-compressed
  // when `gzip` is true.
  void WriteSmallDataset(bool gzip) {
    auto maybe_gzip = [gzip](const std::string& bytes) { return gzip ? Gzip(bytes) : bytes; };
    const std::string suffix = gzip ? ".gz" : "";
    Write(kTrainImagesFile + suffix, maybe_gzip(EncodeIdxImages(ConstantImages(3, 11))));
    Write(kTrainLabelsFile + suffix, maybe_gzip(EncodeIdxLabels({1, 2, 3})));
    Write(kTestImagesFile + suffix, maybe_gzip(EncodeIdxImages(ConstantImages(2, 22))));
    Write(kTestLabelsFile + suffix, maybe_gzip(EncodeIdxLabels({4, 5})));
  }

};

TEST_F(DatasetDirectoryTest, LoadsPlainFiles) {
  WriteSmallDataset(/*gzip=*/false);
  EXPECT_TRUE(IsMnistDirectory(dir_));
  absl::StatusOr<MnistDirectory> mnist = LoadMnistDirectory(dir_);
  ASSERT_TRUE(mnist.ok()) << mnist.status();
  EXPECT_THAT(mnist->train.labels, ElementsAre(1, 2, 3));
  EXPECT_EQ(mnist->train.images, ConstantImages(3, 11));
  EXPECT_THAT(mnist->test.labels, ElementsAre(4, 5));
  EXPECT_EQ(mnist->test.images, ConstantImages(2, 22));
}

TEST_F(DatasetDirectoryTest, LoadsGzipFiles) {
  WriteSmallDataset(/*gzip=*/true);
  EXPECT_TRUE(IsMnistDirectory(dir_));
  absl::StatusOr<MnistDirectory> mnist = LoadMnistDirectory(dir_);
  ASSERT_TRUE(mnist.ok()) << mnist.status();
  EXPECT_THAT(mnist->train.labels, ElementsAre(1, 2, 3));
  EXPECT_THAT(mnist->test.labels, ElementsAre(4, 5));
}

TEST_F(DatasetDirectoryTest, AcceptsTrailingSlashInDirectory) {
  WriteSmallDataset(/*gzip=*/false);
  EXPECT_TRUE(IsMnistDirectory(dir_ + "/"));
  EXPECT_TRUE(LoadMnistDirectory(dir_ + "/").ok());
}

TEST_F(DatasetDirectoryTest, PlainFileWinsOverGzipFile) {
  WriteSmallDataset(/*gzip=*/true);
  Write(kTrainLabelsFile, EncodeIdxLabels({9, 8, 7}));
  absl::StatusOr<MnistDirectory> mnist = LoadMnistDirectory(dir_);
  ASSERT_TRUE(mnist.ok()) << mnist.status();
  EXPECT_THAT(mnist->train.labels, ElementsAre(9, 8, 7));
}

TEST_F(DatasetDirectoryTest, EmptyDirectoryIsNotAnMnistDirectory) {
  EXPECT_FALSE(IsMnistDirectory(dir_));
  EXPECT_FALSE(IsMnistDirectory(dir_ + "/missing"));
}

TEST_F(DatasetDirectoryTest, MissingFileMakesItNotAnMnistDirectory) {
  WriteSmallDataset(/*gzip=*/false);
  std::filesystem::remove(dir_ + "/" + kTestLabelsFile);
  EXPECT_FALSE(IsMnistDirectory(dir_));
}

TEST_F(DatasetDirectoryTest, DirectoryNamedLikeAFileDoesNotCount) {
  WriteSmallDataset(/*gzip=*/false);
  std::filesystem::remove(dir_ + "/" + kTestLabelsFile);
  std::filesystem::create_directory(dir_ + "/" + kTestLabelsFile);
  EXPECT_FALSE(IsMnistDirectory(dir_));
}

TEST_F(DatasetDirectoryTest, MissingFileIsNotFoundNamingIt) {
  WriteSmallDataset(/*gzip=*/false);
  std::filesystem::remove(dir_ + "/" + kTestImagesFile);
  absl::Status status = LoadMnistDirectory(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(dir_), HasSubstr(kTestImagesFile)));
}

TEST_F(DatasetDirectoryTest, ImageAndLabelCountMismatchNamesBothCounts) {
  WriteSmallDataset(/*gzip=*/false);
  Write(kTrainLabelsFile, EncodeIdxLabels({1, 2}));
  absl::Status status = LoadMnistDirectory(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("training"), HasSubstr("3 images"), HasSubstr("2 labels")));
}

TEST_F(DatasetDirectoryTest, TestSetCountMismatchIsRejectedToo) {
  WriteSmallDataset(/*gzip=*/false);
  Write(kTestImagesFile, EncodeIdxImages(ConstantImages(5, 0)));
  absl::Status status = LoadMnistDirectory(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("test"), HasSubstr("5 images"), HasSubstr("2 labels")));
}

TEST_F(DatasetDirectoryTest, CorruptFileErrorIsPrefixedWithItsPath) {
  WriteSmallDataset(/*gzip=*/false);
  const std::string path = Write(kTestLabelsFile, EncodeIdxLabels({4, 12}));
  absl::Status status = LoadMnistDirectory(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(path + ": "), HasSubstr("label at index 1 is 12")));
}

TEST_F(DatasetDirectoryTest, TruncatedGzipFileIsDataLoss) {
  WriteSmallDataset(/*gzip=*/true);
  const std::string gz = Gzip(EncodeIdxImages(ConstantImages(3, 11)));
  Write(std::string(kTrainImagesFile) + ".gz", gz.substr(0, gz.size() - 4));
  EXPECT_EQ(LoadMnistDirectory(dir_).status().code(), absl::StatusCode::kDataLoss);
}

// ---- MakeDataset and Prefix

TEST(DatasetTest, MakeDatasetKeepsImagesAndLabels) {
  absl::StatusOr<Dataset> dataset = MakeDataset(ConstantImages(2, 9), {3, 4});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->size(), 2u);
  EXPECT_EQ(dataset->images, ConstantImages(2, 9));
  EXPECT_THAT(dataset->labels, ElementsAre(3, 4));
}

TEST(DatasetTest, MakeDatasetAcceptsEmpty) {
  absl::StatusOr<Dataset> dataset = MakeDataset({}, {});
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->size(), 0u);
}

TEST(DatasetTest, MakeDatasetRejectsPixelCountNot784PerLabel) {
  absl::Status status = MakeDataset(std::vector<uint8_t>(2 * kPixels - 1), {1, 2}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr("2 labels need 1568 pixels"),
                                                   HasSubstr("got 1567")));
}

TEST(DatasetTest, MakeDatasetRejectsLabelOutside0To9NamingIndexAndValue) {
  absl::Status status = MakeDataset(ConstantImages(3, 0), {0, 9, 10}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("label at index 2 is 10"));
}

TEST(DatasetTest, ImageReturnsTheIthBlockOf784Pixels) {
  std::vector<uint8_t> images = ConstantImages(2, 1);
  std::fill(images.begin() + kPixels, images.end(), 2);
  absl::StatusOr<Dataset> dataset = MakeDataset(std::move(images), {0, 1});
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->image(1).size(), static_cast<size_t>(kPixels));
  EXPECT_EQ(dataset->image(0)[kPixels - 1], 1);
  EXPECT_EQ(dataset->image(1)[0], 2);
}

TEST(DatasetTest, PrefixTakesTheFirstNExamples) {
  std::vector<uint8_t> images = ConstantImages(3, 0);
  for (int i = 0; i < 3; ++i) images[i * kPixels] = static_cast<uint8_t>(100 + i);
  absl::StatusOr<Dataset> dataset = MakeDataset(std::move(images), {5, 6, 7});
  ASSERT_TRUE(dataset.ok());
  const Dataset prefix = dataset->Prefix(2);
  EXPECT_THAT(prefix.labels, ElementsAre(5, 6));
  ASSERT_EQ(prefix.images.size(), 2u * kPixels);
  EXPECT_EQ(prefix.image(1)[0], 101);
}

TEST(DatasetTest, PrefixBeyondSizeTakesEverything) {
  absl::StatusOr<Dataset> dataset = MakeDataset(ConstantImages(2, 3), {5, 6});
  ASSERT_TRUE(dataset.ok());
  const Dataset prefix = dataset->Prefix(1000);
  EXPECT_EQ(prefix.labels, dataset->labels);
  EXPECT_EQ(prefix.images, dataset->images);
  EXPECT_EQ(dataset->Prefix(0).size(), 0u);
}

}  // namespace
}  // namespace convnet
