// Crash recovery: the real convnet_server binary, training and publishing, is
// killed with SIGKILL round after round (at seeded random moments, and at
// every test crash point of server/crash_point.h), then restarted on the same
// model_dir. After every restart:
// - every listed version loads (GetModel with its parameters), predicts, and
//   its model file verifies; every complete version directory on disk is
//   listed, and every version listed once is listed again, unchanged;
// - no ".tmp-*" file or directory is left anywhere under the model_dir;
// - version numbers only grow, none is reused: a version listed for the
//   first time, and the version of a job seen SUCCEEDED for the first time,
//   is higher than every number seen before that run for that model; no two
//   jobs share a version; in submission order (one runner, FIFO) each model's
//   successful jobs got strictly increasing versions;
// - no job is QUEUED or RUNNING; every job the client saw accepted is still
//   known; a job last seen finished is unchanged; a job last seen QUEUED or
//   RUNNING is FAILED as interrupted (or finished, when it got there before
//   the kill).
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/model_file.h"
#include "core/shape.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/crash_point.h"
#include "test_support.h"
#include "tests/support/server_process.h"

namespace convnet::server_testing {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kInterrupted = "interrupted: the server stopped while the job was ";

using convnet::testing::ServerProcess;

// What a round does to the server: kill it at a random moment, or let it kill
// itself at a crash point.
struct Round {
  std::string crash_point;                         // "" = SIGKILL after kill_after
  absl::Duration kill_after = absl::ZeroDuration();
};

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteDataset(dir_.Join("data"), "small", BundledMnist().train.Prefix(300), BundledMnist().test.Prefix(50));
  }

  std::vector<std::string> Flags() const {
    return {"--address=127.0.0.1:0", "--model_dir=" + ModelDir(), "--data_dir=" + dir_.Join("data"),
            "--threads=2", "--max_concurrent_jobs=1", "--max_queued_jobs=8"};
  }
  std::string ModelDir() const { return dir_.Join("models"); }

  // Starts a server (crash point armed or not) and checks everything it
  // recovered. Null (with a test failure) when it did not start.
  std::unique_ptr<ServerProcess> StartAndCheck(int round, const std::string& crash_point) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
        CONVNET_SERVER_BINARY, Flags(), dir_.Join(absl::StrCat("round-", round, ".log")),
        {{std::string(server::kCrashPointVariable),
          crash_point.empty() ? std::nullopt : std::optional<std::string>(crash_point)}});
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    const absl::StatusOr<int> port = (*server)->WaitForPort(absl::Seconds(60));
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return nullptr;
    stub_ = v1::ConvNet::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    CheckNoTemporaryFiles();
    CheckVersions();
    CheckJobs();
    CheckVersionOrder();
    UpdateBaseline();
    return *std::move(server);
  }

  void CheckNoTemporaryFiles() {
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(ModelDir())) {
      EXPECT_FALSE(absl::StartsWith(entry.path().filename().string(), ".tmp-"))
          << "left over after restart: " << entry.path();
    }
  }

  // Remembers the first sighting of model/version (by its creation time, which
  // tells two writes of the same number apart) and checks it is new.
  void NoteListedVersion(const std::string& model, int64_t version, int64_t created_unix_ms) {
    auto [it, inserted] = listed_[model].emplace(version, created_unix_ms);
    if (inserted) listed_now_[model].insert(version);
    if (!inserted) {
      EXPECT_EQ(it->second, created_unix_ms) << model << "/" << version << " changed: a number was reused";
      return;
    }
    const auto job_version = job_versions_[model].find(version);
    if (job_version == job_versions_[model].end()) {
      // Published by a job whose success nobody saw: a number never seen.
      EXPECT_GT(version, baseline_[model]) << model << "/" << version
                                           << " is new but not above every number seen before";
    }
  }

  // Remembers the version of a job seen SUCCEEDED for the first time and
  // checks it is new: above every number seen before this run started, or
  // (`listed_at_restart`, for a job whose success is learnt after a restart)
  // first listed at this restart. (Jobs of one run are only compared with
  // each other in CheckVersionOrder: the client's looks at two jobs are not
  // simultaneous.)
  void NoteSucceeded(const v1::TrainingJob& job, bool listed_at_restart) {
    const auto [it, inserted] = job_versions_[job.model_name()].emplace(job.version(), job.job_id());
    if (!inserted) {
      EXPECT_EQ(it->second, job.job_id()) << job.model_name() << "/" << job.version()
                                          << " is claimed by two jobs: a number was reused";
      return;
    }
    if (listed_at_restart) {
      EXPECT_TRUE(listed_now_[job.model_name()].count(job.version()))
          << "job " << job.job_id() << " is found SUCCEEDED with " << job.model_name() << "/" << job.version()
          << ", which is not a version first listed now";
      return;
    }
    EXPECT_GT(job.version(), baseline_[job.model_name()])
        << "job " << job.job_id() << " got version " << job.version() << " of " << job.model_name()
        << ", not above every number seen before this run";
  }

  // One runner, first in first out: along the submission order, the versions
  // of each model's successful jobs strictly increase, across runs too.
  void CheckVersionOrder() {
    std::map<std::string, int64_t> last;
    for (const std::string& id : job_order_) {
      const v1::TrainingJob& job = jobs_[id];
      if (job.state() != v1::JOB_STATE_SUCCEEDED) continue;
      EXPECT_GT(job.version(), last[job.model_name()])
          << "job " << id << " got " << job.model_name() << "/" << job.version() << " after an earlier job got "
          << last[job.model_name()];
      last[job.model_name()] = job.version();
    }
  }

  // Every number seen so far: what the next run's versions must exceed.
  void UpdateBaseline() {
    for (const auto& [model, versions] : listed_) {
      if (!versions.empty()) baseline_[model] = std::max(baseline_[model], versions.rbegin()->first);
    }
    for (const auto& [model, versions] : job_versions_) {
      if (!versions.empty()) baseline_[model] = std::max(baseline_[model], versions.rbegin()->first);
    }
  }

  void CheckVersions() {
    listed_now_.clear();
    v1::ListModelsResponse models;
    ASSERT_TRUE(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &models).ok());
    std::map<std::string, std::set<int64_t>> now;
    const Dataset& test = BundledMnist().test;
    for (const v1::Model& model : models.models()) {
      for (const v1::ModelVersion& version : model.versions()) {
        now[model.name()].insert(version.version());
        NoteListedVersion(model.name(), version.version(), version.created_unix_ms());
        const std::string where = absl::StrCat(model.name(), "/", version.version());

        v1::GetModelRequest get;
        get.set_model_name(model.name());
        get.set_version(version.version());
        get.set_include_parameters(true);
        v1::GetModelResponse exported;
        const grpc::Status got = stub_->GetModel(Context().get(), get, &exported);
        ASSERT_TRUE(got.ok()) << where << ": " << got.error_message();
        ASSERT_EQ(exported.model().versions_size(), 1) << where;
        const v1::Parameters& parameters = exported.model().versions(0).parameters();
        EXPECT_EQ(static_cast<size_t>(parameters.values_size()), ParameterCount(parameters.feature_maps())) << where;

        v1::PredictRequest predict;
        predict.set_model_name(model.name());
        predict.set_version(version.version());
        *predict.add_images() = PixelImage(test.image(0));
        v1::PredictResponse prediction;
        const grpc::Status predicted = stub_->Predict(Context().get(), predict, &prediction);
        ASSERT_TRUE(predicted.ok()) << where << ": " << predicted.error_message();
        EXPECT_EQ(prediction.version(), version.version());
        ASSERT_EQ(prediction.predictions_size(), 1);

        const absl::StatusOr<Model> file =
            ReadModelFile(absl::StrCat(ModelDir(), "/", model.name(), "/", version.version(), "/model.cnvn"));
        EXPECT_TRUE(file.ok()) << where << ": " << file.status();
      }
    }
    // A version listed once stays listed; nothing complete on disk is hidden.
    for (const auto& [model, versions] : listed_) {
      for (const auto& [version, created] : versions) {
        EXPECT_TRUE(now[model].count(version)) << model << "/" << version << " was listed before a crash, not after";
      }
    }
    for (const fs::directory_entry& model : fs::directory_iterator(ModelDir())) {
      const std::string name = model.path().filename().string();
      if (!model.is_directory() || absl::StartsWith(name, ".")) continue;
      for (const fs::directory_entry& version : fs::directory_iterator(model.path())) {
        int64_t number = 0;
        if (!version.is_directory() || !absl::SimpleAtoi(version.path().filename().string(), &number)) continue;
        EXPECT_TRUE(now[name].count(number)) << version.path() << " is on disk but not listed";
      }
    }
  }

  void CheckJobs() {
    v1::ListTrainingJobsResponse listed;
    ASSERT_TRUE(stub_->ListTrainingJobs(Context().get(), v1::ListTrainingJobsRequest(), &listed).ok());
    for (auto it = listed.jobs().rbegin(); it != listed.jobs().rend(); ++it) {  // oldest first
      const v1::TrainingJob& job = *it;
      EXPECT_TRUE(IsFinal(job.state())) << "job " << job.job_id() << " is " << v1::JobState_Name(job.state())
                                           << " right after a restart";
      if (!jobs_.count(job.job_id())) {
        // Accepted (and even started) while the server was dying: the client
        // never got the answer.
        EXPECT_TRUE(absl::StartsWith(job.error(), kInterrupted)) << job.DebugString();
        job_order_.push_back(job.job_id());
        jobs_[job.job_id()] = job;
        ++interrupted_;
      }
    }
    EXPECT_EQ(static_cast<size_t>(listed.jobs_size()), job_order_.size()) << "the jobs of earlier runs";
    for (const std::string& id : job_order_) {
      v1::GetTrainingJobRequest request;
      request.set_job_id(id);
      v1::TrainingJob now;
      const grpc::Status status = stub_->GetTrainingJob(Context().get(), request, &now);
      ASSERT_TRUE(status.ok()) << "job " << id << " was forgotten: " << status.error_message();
      v1::TrainingJob& before = jobs_[id];
      if (IsFinal(before.state())) {
        EXPECT_EQ(now.state(), before.state()) << id;
        EXPECT_EQ(now.version(), before.version()) << id;
        EXPECT_EQ(now.error(), before.error()) << id;
        EXPECT_EQ(now.epochs_size(), before.epochs_size()) << id;
        continue;
      }
      if (now.state() == v1::JOB_STATE_FAILED && absl::StartsWith(now.error(), kInterrupted)) {
        ++interrupted_;
        // It can have moved on from what the client saw, never back.
        if (before.state() == v1::JOB_STATE_RUNNING) {
          EXPECT_TRUE(absl::StartsWith(now.error(), absl::StrCat(kInterrupted, "running"))) << now.error();
        }
        // A running job's record lags its memory by up to JobManager::kRecordInterval
        // of epochs, but its last epoch is recorded before it is shown.
        if (before.epochs_size() == before.hyperparameters().epochs()) {
          EXPECT_EQ(now.epochs_size(), before.epochs_size()) << id;
        }
      } else {
        // It finished between the client's last look and the kill.
        EXPECT_EQ(now.state(), v1::JOB_STATE_SUCCEEDED) << id << ": " << now.error();
        if (now.state() == v1::JOB_STATE_SUCCEEDED) {
          NoteSucceeded(now, /*listed_at_restart=*/true);
          EXPECT_TRUE(listed_[now.model_name()].count(now.version()))
              << "job " << id << " SUCCEEDED with version " << now.version() << ", which is not listed";
        }
      }
      before = now;
    }
  }

  // Polls every job of the current run (stopping at the first error: the
  // server is gone) and notes what it sees.
  void ObserveJobs(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      v1::GetTrainingJobRequest request;
      request.set_job_id(id);
      v1::TrainingJob job;
      if (!stub_->GetTrainingJob(Context(absl::Seconds(5)).get(), request, &job).ok()) return;
      if (job.state() == v1::JOB_STATE_SUCCEEDED && jobs_[id].state() != v1::JOB_STATE_SUCCEEDED) {
        NoteSucceeded(job, /*listed_at_restart=*/false);
      }
      EXPECT_NE(job.state(), v1::JOB_STATE_FAILED) << id << ": " << job.error();
      jobs_[id] = job;
    }
  }

  // Submits 1..3 small jobs; returns the ids the server accepted (a crash
  // point may kill it during a submission).
  std::vector<std::string> SubmitJobs(ServerProcess& server) {
    std::vector<std::string> ids;
    const int count = std::uniform_int_distribution<int>(1, 3)(random_);
    for (int i = 0; i < count; ++i) {
      const std::string model = std::uniform_int_distribution<int>(0, 1)(random_) == 0 ? "alpha" : "beta";
      const int k = std::uniform_int_distribution<int>(1, 2)(random_);
      v1::TrainRequest request = FreshTrainRequest(model, k, "small", 2, 10);
      v1::TrainResponse response;
      const grpc::Status status = stub_->Train(Context(absl::Seconds(30)).get(), request, &response);
      if (!status.ok()) {
        // Only a server on its way down (at a crash point) may fail a submission.
        EXPECT_TRUE(server.WaitForExit(absl::Seconds(30)).ok())
            << "Train failed on a live server: " << status.error_code() << " " << status.error_message();
        break;
      }
      ids.push_back(response.job_id());
      job_order_.push_back(response.job_id());
      jobs_[response.job_id()] = response.job();
      ++submitted_;
    }
    return ids;
  }

  void RunRound(int index, const Round& round) {
    const std::string what = absl::StrCat(
        "round ", index, ": ",
        round.crash_point.empty() ? absl::StrCat("SIGKILL after ", absl::FormatDuration(round.kill_after))
                                  : absl::StrCat("crash point ", round.crash_point));
    SCOPED_TRACE(what);
    std::cout << what << std::endl;  // with the seed, enough to replay a failing sequence
    std::unique_ptr<ServerProcess> server = StartAndCheck(index, round.crash_point);
    ASSERT_NE(server, nullptr);
    const absl::Time submitted = absl::Now();
    const std::vector<std::string> ids = SubmitJobs(*server);
    if (round.crash_point.empty()) {
      const absl::Time kill_at = submitted + round.kill_after;
      while (absl::Now() < kill_at) {
        ObserveJobs(ids);
        absl::SleepFor(std::min(absl::Milliseconds(5), kill_at - absl::Now()));
      }
      ObserveJobs(ids);
      // SIGKILL fails (FAILED_PRECONDITION) only when the server has already exited.
      if (server->Signal(SIGKILL).ok()) {
        EXPECT_TRUE(server->WaitForExit(absl::Seconds(30)).ok()) << "a SIGKILLed server did not go away";
        ++kills_;
      } else {
        ADD_FAILURE() << "the server exited by itself:\n" << server->Log();
      }
      return;
    }
    absl::StatusOr<int> status = server->WaitForExit(absl::ZeroDuration());
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!status.ok() && absl::Now() < deadline) {
      ObserveJobs(ids);
      absl::SleepFor(absl::Milliseconds(5));
      status = server->WaitForExit(absl::ZeroDuration());
    }
    ASSERT_TRUE(status.ok()) << "crash point " << round.crash_point << " never reached:\n" << server->Log();
    ++kills_;
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << "wait status " << *status;
    const std::string name = round.crash_point.substr(0, round.crash_point.find('@'));
    EXPECT_NE(server->Log().find(absl::StrCat("test crash point ", name, " reached")), std::string::npos)
        << server->Log();
  }

  TempDir dir_;
  std::unique_ptr<v1::ConvNet::Stub> stub_;
  std::mt19937_64 random_;
  std::map<std::string, std::map<int64_t, int64_t>> listed_;        // model -> version -> created_unix_ms
  std::map<std::string, std::set<int64_t>> listed_now_;              // first listed at this restart
  std::map<std::string, std::map<int64_t, std::string>> job_versions_;  // model -> version -> job id
  std::map<std::string, int64_t> baseline_;  // model -> highest number seen before this run
  std::vector<std::string> job_order_;                                // every accepted job, in order
  std::map<std::string, v1::TrainingJob> jobs_;                      // the client's last look at each
  int submitted_ = 0;
  int kills_ = 0;
  int interrupted_ = 0;
};

TEST_F(CrashRecoveryTest, RepeatedKillsDuringTrainingAndPublishingLoseNothingCompleteAndReuseNoNumber) {
  // The seed is logged so that a failing sequence can be replayed:
  // CONVNET_CRASH_TEST_SEED=<seed>.
  uint64_t seed = absl::ToUnixNanos(absl::Now());
  if (const char* fixed = std::getenv("CONVNET_CRASH_TEST_SEED"); fixed != nullptr) {
    ASSERT_TRUE(absl::SimpleAtoi(fixed, &seed)) << fixed;
  }
  std::cout << "seed " << seed << std::endl;
  RecordProperty("seed", std::to_string(seed));
  random_.seed(seed);

  // Every crash point once, in the order a job passes them, and twice as
  // many random kills in between. durable_file.after_temp_write@n is the n-th
  // atomic file write of the run: @1 the first job's QUEUED record (the
  // client never learns its id); @3 and @5 a later record or the version
  // reservation, depending on how the submissions and the first job interleave.
  const std::vector<std::string> crash_points = {
      "durable_file.after_temp_write@1", "jobs.after_running_record", "durable_file.after_temp_write@3",
      "jobs.after_epoch_record",         "durable_file.after_temp_write@5", "repository.after_reserve",
      "repository.after_model_write",    "repository.after_rename",         "jobs.after_publish",
  };
  std::vector<Round> rounds;
  // The random kills: one early (mostly while the first job trains or
  // publishes), one anywhere in the jobs' lifetime.
  for (const std::string& point : crash_points) {
    rounds.push_back(Round{point});
    rounds.push_back(Round{"", absl::Milliseconds(std::uniform_int_distribution<int>(0, 400)(random_))});
    rounds.push_back(Round{"", absl::Milliseconds(std::uniform_int_distribution<int>(0, 1500)(random_))});
  }
  for (size_t i = 0; i < rounds.size(); ++i) {
    RunRound(static_cast<int>(i), rounds[i]);
    if (HasFailure()) return;  // the rounds after a failure would only repeat it
  }

  // A last, clean run: everything recovered, and a new job gets a new number.
  std::unique_ptr<ServerProcess> server = StartAndCheck(static_cast<int>(rounds.size()), "");
  ASSERT_NE(server, nullptr);
  const std::string id = SubmitJob(*stub_, FreshTrainRequest("alpha", 1, "small", 1, 10));
  ASSERT_FALSE(id.empty());
  const v1::TrainingJob job = WaitForJob(*stub_, id);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  NoteSucceeded(job, /*listed_at_restart=*/false);
  CheckVersionOrder();
  UpdateBaseline();
  std::cout << rounds.size() << " rounds, " << kills_ << " kills, " << submitted_ << " jobs submitted, "
            << interrupted_ << " found interrupted, versions seen: alpha up to " << baseline_["alpha"]
            << ", beta up to " << baseline_["beta"] << std::endl;
  EXPECT_GT(interrupted_, 0) << "no kill ever hit a running job: the test did not test";
  EXPECT_EQ(kills_, static_cast<int>(rounds.size()));
}

}  // namespace
}  // namespace convnet::server_testing
