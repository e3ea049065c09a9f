// The job store: one record per job under <model_dir>/.jobs, replaced
// atomically, and what it does with damaged records and crash leftovers.
#include "server/job_store.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/log.h"
#include "test_support.h"

namespace convnet::server {
namespace {

namespace fs = std::filesystem;
using server_testing::TempDir;

JobInfo MakeJob(const std::string& id, JobState state) {
  JobInfo job;
  job.id = id;
  job.model_name = "digits";
  job.state = state;
  job.feature_maps = 3;
  job.init_from = "digits/2";
  job.train_dataset = "inline";
  job.eval_dataset = "small";
  job.train_examples = 120;
  job.eval_examples = 30;
  job.options.epochs = 4;
  job.options.batch_size = 12;
  job.options.learning_rate = 0.25;
  job.options.l2 = 0.001;
  job.options.cost = Cost::kQuadratic;
  job.options.seed = 0xfedcba9876543210ULL;
  job.options.progress_every = 0;
  job.progress = TrainProgress{2, 60, 120, 0.75};
  job.epochs.push_back(EpochMetrics{1, 0.9, 0.5, 0.8, 30, 1.5});
  job.cancel_requested = true;
  job.error = "why it ended";
  job.created = absl::FromUnixMillis(1700000000123);
  job.started = absl::FromUnixMillis(1700000000456);
  if (IsTerminal(state)) job.finished = absl::FromUnixMillis(1700000000789);
  if (state == JobState::kSucceeded) job.version = 7;
  return job;
}

void ExpectSameJob(const JobInfo& a, const JobInfo& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.feature_maps, b.feature_maps);
  EXPECT_EQ(a.init_from, b.init_from);
  EXPECT_EQ(a.train_dataset, b.train_dataset);
  EXPECT_EQ(a.eval_dataset, b.eval_dataset);
  EXPECT_EQ(a.train_examples, b.train_examples);
  EXPECT_EQ(a.eval_examples, b.eval_examples);
  EXPECT_EQ(a.options.epochs, b.options.epochs);
  EXPECT_EQ(a.options.batch_size, b.options.batch_size);
  EXPECT_EQ(a.options.learning_rate, b.options.learning_rate);
  EXPECT_EQ(a.options.l2, b.options.l2);
  EXPECT_EQ(a.options.cost, b.options.cost);
  EXPECT_EQ(a.options.seed, b.options.seed);
  EXPECT_EQ(a.options.progress_every, b.options.progress_every);
  ASSERT_EQ(a.progress.has_value(), b.progress.has_value());
  if (a.progress.has_value()) {
    EXPECT_EQ(a.progress->epoch, b.progress->epoch);
    EXPECT_EQ(a.progress->samples_done, b.progress->samples_done);
    EXPECT_EQ(a.progress->samples_total, b.progress->samples_total);
    EXPECT_EQ(a.progress->running_cost, b.progress->running_cost);
  }
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (size_t i = 0; i < a.epochs.size(); ++i) {
    EXPECT_EQ(a.epochs[i].epoch, b.epochs[i].epoch);
    EXPECT_EQ(a.epochs[i].train_cost, b.epochs[i].train_cost);
    EXPECT_EQ(a.epochs[i].test_accuracy, b.epochs[i].test_accuracy);
    EXPECT_EQ(a.epochs[i].test_cost, b.epochs[i].test_cost);
    EXPECT_EQ(a.epochs[i].test_examples, b.epochs[i].test_examples);
    EXPECT_EQ(a.epochs[i].seconds, b.epochs[i].seconds);
  }
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.cancel_requested, b.cancel_requested);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.finished, b.finished);
}

std::set<std::string> FileNames(const std::string& dir) {
  std::set<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { SetInfoLoggingEnabled(false); }
  std::unique_ptr<JobStore> Open() {
    auto store = JobStore::Open(Dir());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  LoadedJobRecords Load(const JobStore& store) {
    auto loaded = store.Load();
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? *std::move(loaded) : LoadedJobRecords{};
  }
  std::string Dir() const { return dir_.Join(".jobs"); }
  TempDir dir_;
};

TEST_F(JobStoreTest, ARecordRoundTripsEveryFieldOfTheJob) {
  auto store = Open();
  const JobInfo running = MakeJob("1700000000000-1", JobState::kRunning);
  JobInfo queued = MakeJob("1700000000000-2", JobState::kQueued);
  queued.progress.reset();
  queued.epochs.clear();
  queued.started = absl::InfinitePast();
  ASSERT_TRUE(store->Save(running).ok());
  ASSERT_TRUE(store->Save(queued).ok());
  EXPECT_EQ(FileNames(Dir()), (std::set<std::string>{"1700000000000-1.job", "1700000000000-2.job"}));

  const LoadedJobRecords loaded = Load(*Open());
  ASSERT_EQ(loaded.jobs.size(), 2u);
  for (const JobInfo& job : loaded.jobs) ExpectSameJob(job, job.id == running.id ? running : queued);
  EXPECT_EQ(std::set<std::string>(loaded.all_ids.begin(), loaded.all_ids.end()),
            (std::set<std::string>{running.id, queued.id}));
}

TEST_F(JobStoreTest, SavingAgainReplacesTheRecordAndLeavesNoTemporaryFile) {
  auto store = Open();
  ASSERT_TRUE(store->Save(MakeJob("5-1", JobState::kRunning)).ok());
  const JobInfo succeeded = MakeJob("5-1", JobState::kSucceeded);
  ASSERT_TRUE(store->Save(succeeded).ok());
  EXPECT_EQ(FileNames(Dir()), std::set<std::string>{"5-1.job"});
  const LoadedJobRecords loaded = Load(*store);
  ASSERT_EQ(loaded.jobs.size(), 1u);
  ExpectSameJob(loaded.jobs[0], succeeded);
}

TEST_F(JobStoreTest, AWriteInterruptedBeforeItsRenameLeavesThePreviousRecordAndIsCleanedUp) {
  auto store = Open();
  const JobInfo queued = MakeJob("5-1", JobState::kQueued);
  ASSERT_TRUE(store->Save(queued).ok());
  // What a crash between the temporary file's fsync and the rename leaves.
  std::ofstream(Dir() + "/.tmp-5-1.job-0123456789abcdef", std::ios::binary)
      << EncodeJobRecord(MakeJob("5-1", JobState::kRunning));
  const LoadedJobRecords loaded = Load(*Open());
  ASSERT_EQ(loaded.jobs.size(), 1u);
  ExpectSameJob(loaded.jobs[0], queued);
  EXPECT_EQ(FileNames(Dir()), std::set<std::string>{"5-1.job"});
}

TEST_F(JobStoreTest, DamagedRecordsAreSetAsideWhileTheOthersLoad) {
  auto store = Open();
  for (const char* id : {"9-1", "9-2", "9-3", "9-4", "9-5"}) {
    ASSERT_TRUE(store->Save(MakeJob(id, JobState::kFailed)).ok());
  }
  const std::string truncated = Dir() + "/9-1.job";
  fs::resize_file(truncated, fs::file_size(truncated) - 3);
  {
    std::fstream flipped(Dir() + "/9-2.job", std::ios::in | std::ios::out | std::ios::binary);
    flipped.seekg(30);
    const char byte = static_cast<char>(flipped.get() ^ 0x20);
    flipped.seekp(30);
    flipped.put(byte);
  }
  std::ofstream(Dir() + "/9-3.job", std::ios::binary | std::ios::trunc) << "not a record";
  fs::copy_file(Dir() + "/9-5.job", Dir() + "/9-4.job", fs::copy_options::overwrite_existing);  // wrong id
  std::ofstream(Dir() + "/README") << "not a record either";

  LoadedJobRecords loaded = Load(*Open());
  ASSERT_EQ(loaded.jobs.size(), 1u);
  EXPECT_EQ(loaded.jobs[0].id, "9-5");
  EXPECT_EQ(std::set<std::string>(loaded.all_ids.begin(), loaded.all_ids.end()),
            (std::set<std::string>{"9-1", "9-2", "9-3", "9-4", "9-5"}));
  EXPECT_EQ(FileNames(Dir()), (std::set<std::string>{"9-1.job.corrupt", "9-2.job.corrupt", "9-3.job.corrupt",
                                                      "9-4.job.corrupt", "9-5.job", "README"}));

  // Set aside once: the next start loads the same and still knows the ids.
  loaded = Load(*Open());
  ASSERT_EQ(loaded.jobs.size(), 1u);
  EXPECT_EQ(loaded.all_ids.size(), 5u);
}

TEST_F(JobStoreTest, DecodingNamesWhatIsWrong) {
  const std::string good = EncodeJobRecord(MakeJob("1-1", JobState::kCancelled));
  ASSERT_TRUE(DecodeJobRecord(good).ok());
  auto message = [](absl::string_view bytes) { return std::string(DecodeJobRecord(bytes).status().message()); };
  EXPECT_EQ(DecodeJobRecord("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(message(good.substr(0, 10)).find("truncated: 10 bytes"), std::string::npos);
  EXPECT_NE(message(good.substr(0, good.size() - 1)).find("truncated or too long"), std::string::npos);
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_NE(message(bad_magic).find("CNVNJOB1"), std::string::npos);
  std::string bad_byte = good;
  bad_byte[20] ^= 1;
  EXPECT_NE(message(bad_byte).find("checksum mismatch"), std::string::npos);
  JobInfo bad_id = MakeJob("../../etc/passwd", JobState::kFailed);
  EXPECT_NE(message(EncodeJobRecord(bad_id)).find("bad job id"), std::string::npos);
  JobInfo bad_name = MakeJob("1-1", JobState::kFailed);
  bad_name.model_name = "../x";
  EXPECT_NE(message(EncodeJobRecord(bad_name)).find("bad model name"), std::string::npos);
}

TEST_F(JobStoreTest, AnUnsafeIdIsNeverUsedAsAFileName) {
  auto store = Open();
  EXPECT_EQ(store->Save(MakeJob("../escape", JobState::kFailed)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Remove("a/b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(FileNames(Dir()).empty());
  EXPECT_FALSE(fs::exists(dir_.Join("escape.job")));
}

TEST_F(JobStoreTest, RemoveDeletesTheRecordAndAMissingOneIsFine) {
  auto store = Open();
  ASSERT_TRUE(store->Save(MakeJob("3-1", JobState::kSucceeded)).ok());
  ASSERT_TRUE(store->Remove("3-1").ok());
  EXPECT_TRUE(FileNames(Dir()).empty());
  EXPECT_TRUE(store->Remove("3-1").ok());
  EXPECT_TRUE(Load(*store).jobs.empty());
}

}  // namespace
}  // namespace convnet::server
