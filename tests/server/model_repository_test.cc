// The model repository: TF Serving's <model_dir>/<name>/<version>/ layout,
// atomic publication, reloading, and what it does with crash leftovers.
#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/model_file.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/log.h"
#include "test_support.h"

namespace convnet::server {
namespace {

namespace fs = std::filesystem;
using server_testing::TempDir;

Model MakeModel(uint64_t seed, int k = 1) {
  Model model{*Parameters::Initialize(k, seed), ModelMetadata{}};
  model.metadata.trained = true;
  model.metadata.train_dataset = "inline";
  model.metadata.train_examples = 42;
  model.metadata.options.epochs = 3;
  model.metadata.epochs.push_back(EpochMetrics{1, 0.5, 0.9, 0.4, 100, 0.01});
  return model;
}

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override { SetInfoLoggingEnabled(false); }
  std::unique_ptr<ModelRepository> Open() {
    auto repository = ModelRepository::Open(dir_.path());
    EXPECT_TRUE(repository.ok()) << repository.status();
    return repository.ok() ? *std::move(repository) : nullptr;
  }
  TempDir dir_;
};

TEST_F(ModelRepositoryTest, PublishNumbersVersionsFromOneInVersionDirectories) {
  auto repository = Open();
  for (int64_t expected = 1; expected <= 3; ++expected) {
    auto published = repository->Publish("digits", MakeModel(expected));
    ASSERT_TRUE(published.ok()) << published.status();
    EXPECT_EQ(published->version, expected);
    EXPECT_TRUE(fs::is_regular_file(dir_.Join("digits/" + std::to_string(expected) + "/model.cnvn")));
  }
  auto latest = repository->Get("digits", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 3);
  EXPECT_EQ(latest->model->parameters, MakeModel(3).parameters);
}

TEST_F(ModelRepositoryTest, ReopeningLoadsEveryVersionBitExactly) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("a", MakeModel(1)).ok());
    ASSERT_TRUE(repository->Publish("a", MakeModel(2, 3)).ok());
    ASSERT_TRUE(repository->Publish("b-2", MakeModel(3)).ok());
  }
  auto reopened = Open();
  const std::vector<ModelVersions> models = reopened->List();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].model_name, "a");
  ASSERT_EQ(models[0].versions.size(), 2u);
  EXPECT_EQ(models[0].versions[1].model->parameters, MakeModel(2, 3).parameters);
  EXPECT_EQ(models[0].versions[1].model->metadata.train_examples, 42);
  EXPECT_EQ(models[1].model_name, "b-2");
  EXPECT_EQ(models[1].versions[0].model->parameters, MakeModel(3).parameters);
}

TEST_F(ModelRepositoryTest, UnknownModelsAndVersionsAreNotFoundAndBadNamesInvalid) {
  auto repository = Open();
  ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  EXPECT_EQ(repository->Get("nosuch", 0).status().code(), absl::StatusCode::kNotFound);
  auto missing = repository->Get("m", 2);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("has no version 2 (versions: 1)"), std::string::npos)
      << missing.status();
  EXPECT_EQ(repository->Get("m", -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repository->Get("../m", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repository->Publish("M", MakeModel(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repository->GetModel("nosuch").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, TemporaryDirectoriesLeftByACrashAreRemovedAndNeverServed) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  // What a crash between WriteModelFile and the rename leaves behind.
  fs::create_directories(dir_.Join("m/.tmp-2-0123456789abcdef"));
  ASSERT_TRUE(WriteModelFile(dir_.Join("m/.tmp-2-0123456789abcdef/model.cnvn"), MakeModel(2)).ok());
  auto repository = Open();
  EXPECT_FALSE(fs::exists(dir_.Join("m/.tmp-2-0123456789abcdef")));
  auto models = repository->List();
  ASSERT_EQ(models.size(), 1u);
  ASSERT_EQ(models[0].versions.size(), 1u);
  EXPECT_EQ(models[0].versions[0].version, 1);
}

TEST_F(ModelRepositoryTest, CorruptVersionIsNotServedAndItsNumberIsNeverReused) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
    ASSERT_TRUE(repository->Publish("m", MakeModel(2)).ok());
  }
  const std::string file = dir_.Join("m/2/model.cnvn");
  fs::resize_file(file, fs::file_size(file) / 2);  // a torn file
  auto repository = Open();
  EXPECT_EQ(repository->Get("m", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repository->Get("m", 0)->version, 1);
  auto next = repository->Publish("m", MakeModel(3));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 3);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(ModelRepositoryTest, EveryPublishRecordsItsNumberBeforeWritingTheVersion) {
  auto repository = Open();
  ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  EXPECT_EQ(ReadText(dir_.Join("m/.highest_version")), "1\n");
  ASSERT_TRUE(repository->Publish("m", MakeModel(2)).ok());
  EXPECT_EQ(ReadText(dir_.Join("m/.highest_version")), "2\n");
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_.Join("m"))) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".tmp-")) << entry.path();
  }
}

TEST_F(ModelRepositoryTest, ANumberReservedBeforeACrashIsNeverReusedEvenAfterRepeatedRestarts) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  // A crash right after reserving version 2: the reservation and an empty
  // temporary directory are all that reached the disk.
  std::ofstream(dir_.Join("m/.highest_version"), std::ios::trunc) << "2\n";
  fs::create_directories(dir_.Join("m/.tmp-2-0123456789abcdef"));
  Open();  // cleans up the temporary directory ...
  EXPECT_FALSE(fs::exists(dir_.Join("m/.tmp-2-0123456789abcdef")));
  Open();  // ... and a second crash before any publish changes nothing
  auto repository = Open();
  EXPECT_EQ(repository->GetModel("m")->versions.size(), 1u);
  auto next = repository->Publish("m", MakeModel(3));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 3);
}

TEST_F(ModelRepositoryTest, ATemporaryDirectoryKeepsItsNumberTakenWithoutAReservationFile) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  fs::remove(dir_.Join("m/.highest_version"));
  fs::create_directories(dir_.Join("m/.tmp-5-0123456789abcdef"));
  auto next = Open()->Publish("m", MakeModel(2));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 6);
}

// The entries of a model directory, sorted.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(ModelRepositoryTest, AnUnreadableReservationKeepsTheVersionsServedButRefusesToNumberANewOne) {
  for (const std::string contents : {"garbage", "-4\n", ""}) {
    SCOPED_TRACE(contents);
    fs::remove_all(dir_.Join("m"));
    {
      auto repository = Open();
      ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
      ASSERT_TRUE(repository->Publish("m", MakeModel(2)).ok());
    }
    std::ofstream(dir_.Join("m/.highest_version"), std::ios::trunc) << contents;
    auto repository = Open();
    ASSERT_NE(repository, nullptr);
    EXPECT_EQ(repository->Get("m", 0)->version, 2);
    auto next = repository->Publish("m", MakeModel(3));
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(next.status().message()),
                testing::AllOf(testing::HasSubstr("m/.highest_version is not a version number >= 0"),
                               testing::HasSubstr(absl::StrCat("holds \"", absl::CHexEscape(contents), "\""))));
    EXPECT_EQ(Entries(dir_.Join("m")), (std::vector<std::string>{".highest_version", "1", "2"}));
  }
}

TEST_F(ModelRepositoryTest, APublishPastTheLastVersionNumberFailsAndPublishesNothing) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  std::ofstream(dir_.Join("m/.highest_version"), std::ios::trunc) << "9223372036854775807\n";
  auto repository = Open();
  auto next = repository->Publish("m", MakeModel(2));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(next.status().message()),
              testing::HasSubstr("model \"m\" has no version numbers left (.highest_version is 9223372036854775807)"));
  EXPECT_EQ(repository->GetModel("m")->versions.size(), 1u);
  EXPECT_EQ(Entries(dir_.Join("m")), (std::vector<std::string>{".highest_version", "1"}));
  EXPECT_EQ(ReadText(dir_.Join("m/.highest_version")), "9223372036854775807\n");
}

TEST_F(ModelRepositoryTest, PublishRefusesNonFiniteParametersBeforeWritingAnything) {
  auto repository = Open();
  Model model = MakeModel(1);
  model.parameters.mutable_flat()[4] = std::numeric_limits<float>::quiet_NaN();
  auto published = repository->Publish("m", std::move(model));
  ASSERT_FALSE(published.ok());
  EXPECT_EQ(published.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(published.status().message()), testing::HasSubstr("parameter 4 is nan"));
  EXPECT_FALSE(fs::exists(dir_.Join("m")));
  EXPECT_TRUE(repository->List().empty());
}

TEST_F(ModelRepositoryTest, TheHiddenJobRecordDirectoryIsNotAModel) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  fs::create_directories(dir_.Join(".jobs/1"));
  std::ofstream(dir_.Join(".jobs/1/model.cnvn")) << "x";
  std::ofstream(dir_.Join(".jobs/1-1.job")) << "x";
  auto models = Open()->List();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].model_name, "m");
  EXPECT_TRUE(fs::exists(dir_.Join(".jobs/1-1.job")));  // not the repository's to clean
}

TEST_F(ModelRepositoryTest, EntriesThatAreNotModelsOrVersionsAreIgnored) {
  {
    auto repository = Open();
    ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  }
  fs::create_directories(dir_.Join("Not A Name/1"));
  fs::create_directories(dir_.Join("m/latest"));
  fs::create_directories(dir_.Join("m/007"));
  std::ofstream(dir_.Join("stray-file")) << "x";
  auto repository = Open();
  auto models = repository->List();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].model_name, "m");
  EXPECT_EQ(models[0].versions.size(), 1u);
}

TEST_F(ModelRepositoryTest, ConcurrentPublishesGetDistinctVersions) {
  auto repository = Open();
  std::vector<std::thread> threads;
  std::vector<int64_t> versions(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto published = repository->Publish("m", MakeModel(10 + i));
      versions[i] = published.ok() ? published->version : -1;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(std::set<int64_t>(versions.begin(), versions.end()), (std::set<int64_t>{1, 2, 3, 4}));
  for (int i = 0; i < 4; ++i) {
    auto served = repository->Get("m", versions[i]);
    ASSERT_TRUE(served.ok());
    EXPECT_EQ(served->model->parameters, MakeModel(10 + i).parameters);
  }
  EXPECT_EQ(Open()->GetModel("m")->versions.size(), 4u);
}

TEST_F(ModelRepositoryTest, ASnapshotStaysValidWhileNewerVersionsArePublished) {
  auto repository = Open();
  ASSERT_TRUE(repository->Publish("m", MakeModel(1)).ok());
  auto snapshot = repository->Get("m", 0);
  ASSERT_TRUE(snapshot.ok());
  ASSERT_TRUE(repository->Publish("m", MakeModel(2)).ok());
  EXPECT_EQ(snapshot->version, 1);
  EXPECT_EQ(snapshot->model->parameters, MakeModel(1).parameters);
  EXPECT_EQ(repository->Get("m", 0)->version, 2);
}

// A version written by another process (an operator's copy), as Publish
// would lay it out.
void WriteVersion(const TempDir& dir, const std::string& name, int64_t version, const Model& model) {
  const fs::path path = fs::path(dir.path()) / name / std::to_string(version);
  fs::create_directories(path);
  ASSERT_TRUE(WriteModelFile((path / kModelFileName).string(), model).ok());
}

TEST_F(ModelRepositoryTest, LoadNewVersionsServesVersionDirectoriesThatAppearedOnDisk) {
  auto repository = Open();
  ASSERT_TRUE(repository->Publish("a", MakeModel(1)).ok());
  WriteVersion(dir_, "a", 5, MakeModel(5));
  WriteVersion(dir_, "new-model", 2, MakeModel(2));
  EXPECT_EQ(repository->Get("a", 5).status().code(), absl::StatusCode::kNotFound);

  const absl::StatusOr<std::vector<std::string>> loaded = repository->LoadNewVersions();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, (std::vector<std::string>{"a/5", "new-model/2"}));
  auto latest = repository->Get("a", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 5);
  EXPECT_EQ(latest->model->parameters, MakeModel(5).parameters);
  EXPECT_TRUE(repository->Get("new-model", 2).ok());
  // Nothing new the second time; the next publish comes after the copy.
  EXPECT_EQ(*repository->LoadNewVersions(), std::vector<std::string>{});
  EXPECT_EQ(repository->Publish("a", MakeModel(6))->version, 6);
}

TEST_F(ModelRepositoryTest, LoadNewVersionsNeverUnloadsOrReplacesAServedVersion) {
  auto repository = Open();
  ASSERT_TRUE(repository->Publish("a", MakeModel(1)).ok());
  ASSERT_TRUE(repository->Publish("a", MakeModel(2)).ok());
  fs::remove_all(dir_.Join("a/1"));
  fs::remove_all(dir_.Join("a/2"));
  WriteVersion(dir_, "a", 2, MakeModel(99));
  ASSERT_TRUE(repository->LoadNewVersions().ok());
  auto first = repository->Get("a", 1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->model->parameters, MakeModel(1).parameters);
  EXPECT_EQ(repository->Get("a", 2)->model->parameters, MakeModel(2).parameters);
}

TEST_F(ModelRepositoryTest, LoadNewVersionsSkipsAnIncompleteCopyUntilItIsComplete) {
  auto repository = Open();
  fs::create_directories(dir_.Join("a/1"));
  { std::ofstream(dir_.Join("a/1/model.cnvn")) << "half a model"; }
  const absl::StatusOr<std::vector<std::string>> skipped = repository->LoadNewVersions();
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_TRUE(skipped->empty());
  EXPECT_EQ(repository->Get("a", 1).status().code(), absl::StatusCode::kNotFound);

  WriteVersion(dir_, "a", 1, MakeModel(1));
  EXPECT_EQ(*repository->LoadNewVersions(), std::vector<std::string>{"a/1"});
  EXPECT_TRUE(repository->Get("a", 1).ok());
}

TEST_F(ModelRepositoryTest, LoadNewVersionsLeavesTemporaryDirectoriesOfPublishesAlone) {
  auto repository = Open();
  fs::create_directories(dir_.Join("a/.tmp-3-0123456789abcdef"));
  ASSERT_TRUE(repository->LoadNewVersions().ok());
  EXPECT_TRUE(fs::exists(dir_.Join("a/.tmp-3-0123456789abcdef")));
  EXPECT_EQ(repository->Publish("a", MakeModel(4))->version, 4);  // 3 is taken
}

TEST_F(ModelRepositoryTest, PublishStampsTheCreationTime) {
  auto repository = Open();
  auto published = repository->Publish("m", MakeModel(1));
  ASSERT_TRUE(published.ok());
  EXPECT_GT(published->model->metadata.created_unix_ms, 1'600'000'000'000);
  auto read = ReadModelFile(dir_.Join("m/1/model.cnvn"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->metadata.created_unix_ms, published->model->metadata.created_unix_ms);
}

}  // namespace
}  // namespace convnet::server
