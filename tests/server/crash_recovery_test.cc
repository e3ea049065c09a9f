// Crash recovery: the real convnet_server binary, training and publishing, is
// killed with SIGKILL round after round, at seeded random moments and at
// every test crash point of server/crash_point.h, and restarted on the same
// model_dir each time. Restarting a real binary a few dozen times takes
// minutes, so the scenario runs once for the whole suite
// (CrashRecoveryScenario, in SetUpTestSuite) and checks its properties after
// every restart; each test below states one property and fails with what the
// scenario saw break it. The seed is printed and recorded; a failing sequence
// replays with CONVNET_CRASH_TEST_SEED=<seed>.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

using convnet::testing::ServerProcess;

constexpr absl::string_view kInterrupted = "interrupted: the server stopped while the job was ";

// What the scenario checks after every restart (and while the server runs);
// each is one test of CrashRecoveryTest, named after it.
enum class Property {
  kNoTemporaryFiles,
  kListedVersionsServe,
  kListedVersionsStayListed,
  kVersionDirectoriesListed,
  kNumberNeverGivenTwice,
  kNewNumbersAboveSeen,
  kVersionsFollowSubmissionOrder,
  kNoJobActiveAfterRestart,
  kAcceptedJobsKept,
  kFinishedJobsUnchanged,
  kActiveJobsInterruptedOrSucceeded,
  kUnansweredJobsInterrupted,
  kNoJobFailsWhileRunning,
  kTrainFailsOnlyWhenDying,
  kRoundsEndInTheirKill,
  kNewJobAfterLastRestartSucceeds,
  kKillsInterruptJobs,
};

// What a round does to the server: kill it at a random moment, or let it kill
// itself at a crash point.
struct Round {
  std::string crash_point;  // "" = SIGKILL after kill_after
  absl::Duration kill_after = absl::ZeroDuration();
};

// A check's outcome: when the property did not hold, what is streamed into
// it is recorded as one violation (prefixed with the round) when it goes away.
class Verdict {
 public:
  // `violations` null: the property held, nothing is recorded.
  Verdict(std::vector<std::string>* violations, absl::string_view round) : violations_(violations) {
    if (violations_ != nullptr) message_ << round << ": ";
  }
  Verdict(const Verdict&) = delete;
  Verdict& operator=(const Verdict&) = delete;
  ~Verdict() {
    if (violations_ != nullptr) violations_->push_back(message_.str());
  }

  template <typename T>
  Verdict& operator<<(const T& value) {
    if (violations_ != nullptr) message_ << value;
    return *this;
  }

 private:
  std::vector<std::string>* violations_;
  std::ostringstream message_;
};

// The rounds, run once: every crash point once, in the order a job passes
// them, with two random kills after each, and a last clean run in which a new
// job must succeed. What it finds is kept by property (Violations); a failure
// to drive the server at all (it does not start, ListModels fails) ends the
// scenario early (Broken).
//
// What is checked, after every restart:
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
// While a server runs: no job fails, and Train fails only on a server that
// is on its way down (at a crash point).
class CrashRecoveryScenario {
 public:
  explicit CrashRecoveryScenario(uint64_t seed) : random_(seed) {
    WriteDataset(dir_.Join("data"), "small", BundledMnist().train.Prefix(300), BundledMnist().test.Prefix(50));
  }

  // Runs every round and the last clean run; returns early when Broken().
  void Run() {
    // durable_file.after_temp_write@n is the n-th atomic file write of the
    // run: @1 the first job's QUEUED record (the client never learns its id);
    // @3 and @5 a later record or the version reservation, depending on how
    // the submissions and the first job interleave.
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
      if (!broken_.empty()) return;
    }
    RunLastCleanRun(static_cast<int>(rounds.size()));
    if (!broken_.empty()) return;
    Expect(Property::kKillsInterruptJobs, interrupted_ > 0)
        << "no kill ever hit a queued or running job: the scenario did not test recovery";
    Expect(Property::kRoundsEndInTheirKill, kills_ == static_cast<int>(rounds.size()))
        << kills_ << " kills in " << rounds.size() << " rounds";
    std::cout << rounds.size() << " rounds, " << kills_ << " kills, " << submitted_ << " jobs submitted, "
              << interrupted_ << " found interrupted, versions seen: alpha up to " << baseline_["alpha"]
              << ", beta up to " << baseline_["beta"] << std::endl;
    completed_ = true;
  }

  // True once Run() went through every round and the last clean run.
  bool completed() const { return completed_; }
  // Why the scenario could not go on ("" when it could).
  const std::string& broken() const { return broken_; }
  // What broke `property`, in the order seen.
  const std::vector<std::string>& Violations(Property property) { return violations_[property]; }

 private:
  std::vector<std::string> Flags() const {
    return {"--address=127.0.0.1:0", "--model_dir=" + ModelDir(), "--data_dir=" + dir_.Join("data"),
            "--threads=2", "--max_concurrent_jobs=1", "--max_queued_jobs=8"};
  }
  std::string ModelDir() const { return dir_.Join("models"); }

  // A violation of `property` when !holds; stream the details into it.
  Verdict Expect(Property property, bool holds) { return Verdict(holds ? nullptr : &violations_[property], round_); }

  // Ends the scenario: the server cannot be driven, nothing more can be checked.
  void Break(const std::string& why) {
    if (broken_.empty()) broken_ = absl::StrCat(round_, ": ", why);
  }

  // Kill the server at a random moment, or let it reach its crash point; then
  // the next round's start checks what it left behind.
  void RunRound(int index, const Round& round) {
    round_ = absl::StrCat("round ", index, " (",
                          round.crash_point.empty()
                              ? absl::StrCat("SIGKILL after ", absl::FormatDuration(round.kill_after))
                              : absl::StrCat("crash point ", round.crash_point),
                          ")");
    std::cout << round_ << std::endl;  // with the seed, enough to replay a failing sequence
    std::unique_ptr<ServerProcess> server = StartAndCheck(index, round.crash_point);
    if (server == nullptr) return;
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
      const bool signalled = server->Signal(SIGKILL).ok();
      Expect(Property::kRoundsEndInTheirKill, signalled) << "the server exited by itself:\n" << server->Log();
      if (!signalled) return;
      const bool gone = server->WaitForExit(absl::Seconds(30)).ok();
      Expect(Property::kRoundsEndInTheirKill, gone) << "a SIGKILLed server did not go away";
      if (gone) ++kills_;
      return;
    }
    absl::StatusOr<int> status = server->WaitForExit(absl::ZeroDuration());
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!status.ok() && absl::Now() < deadline) {
      ObserveJobs(ids);
      absl::SleepFor(absl::Milliseconds(5));
      status = server->WaitForExit(absl::ZeroDuration());
    }
    Expect(Property::kRoundsEndInTheirKill, status.ok())
        << "crash point " << round.crash_point << " never reached:\n" << server->Log();
    if (!status.ok()) return;  // ~ServerProcess kills it; the next round starts afresh
    ++kills_;
    Expect(Property::kRoundsEndInTheirKill, WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "wait status " << *status;
    const std::string name = round.crash_point.substr(0, round.crash_point.find('@'));
    Expect(Property::kRoundsEndInTheirKill,
           server->Log().find(absl::StrCat("test crash point ", name, " reached")) != std::string::npos)
        << "the log does not say crash point " << name << " was reached:\n" << server->Log();
  }

  // A restart with nothing armed: everything recovered, and a new job
  // succeeds with a new number.
  void RunLastCleanRun(int index) {
    round_ = absl::StrCat("the last clean run (round ", index, ")");
    std::unique_ptr<ServerProcess> server = StartAndCheck(index, "");
    if (server == nullptr) return;
    v1::TrainResponse accepted;
    const grpc::Status status =
        stub_->Train(Context().get(), FreshTrainRequest("alpha", 1, "small", 1, 10), &accepted);
    Expect(Property::kNewJobAfterLastRestartSucceeds, status.ok())
        << "Train: " << status.error_code() << " " << status.error_message();
    if (!status.ok()) return;
    const std::optional<v1::TrainingJob> job = AwaitFinal(accepted.job_id(), absl::Seconds(120));
    if (!job.has_value()) return;
    Expect(Property::kNewJobAfterLastRestartSucceeds, job->state() == v1::JOB_STATE_SUCCEEDED)
        << "job " << job->job_id() << " is " << v1::JobState_Name(job->state()) << ": " << job->error();
    if (job->state() != v1::JOB_STATE_SUCCEEDED) return;
    NoteSucceeded(*job, /*listed_at_restart=*/false);
    CheckVersionOrder();
    UpdateBaseline();
  }

  // Polls job `id` until it is final. nullopt (a violation, or Broken when the
  // server cannot be asked) when it is not final within `timeout`.
  std::optional<v1::TrainingJob> AwaitFinal(const std::string& id, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    v1::TrainingJob job;
    while (absl::Now() < deadline) {
      const grpc::Status status = stub_->GetTrainingJob(Context().get(), request, &job);
      if (!status.ok()) {
        Break(absl::StrCat("GetTrainingJob(", id, "): ", status.error_message()));
        return std::nullopt;
      }
      if (IsFinal(job.state())) return job;
      absl::SleepFor(absl::Milliseconds(5));
    }
    Expect(Property::kNewJobAfterLastRestartSucceeds, false)
        << "job " << id << " did not finish within " << timeout << "; last state "
        << v1::JobState_Name(job.state());
    return std::nullopt;
  }

  // Starts a server (crash point armed or not) and checks everything it
  // recovered. Null (and Broken) when it did not start.
  std::unique_ptr<ServerProcess> StartAndCheck(int round, const std::string& crash_point) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
        CONVNET_SERVER_BINARY, Flags(), dir_.Join(absl::StrCat("round-", round, ".log")),
        {{std::string(server::kCrashPointVariable),
          crash_point.empty() ? std::nullopt : std::optional<std::string>(crash_point)}});
    if (!server.ok()) {
      Break(absl::StrCat("the server did not start: ", server.status().ToString()));
      return nullptr;
    }
    const absl::StatusOr<int> port = (*server)->WaitForPort(absl::Seconds(60));
    if (!port.ok()) {
      Break(absl::StrCat("the server did not listen: ", port.status().ToString()));
      return nullptr;
    }
    stub_ = v1::ConvNet::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    CheckNoTemporaryFiles();
    CheckVersions();
    CheckJobs();
    CheckVersionOrder();
    UpdateBaseline();
    if (!broken_.empty()) return nullptr;
    return *std::move(server);
  }

  void CheckNoTemporaryFiles() {
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(ModelDir())) {
      Expect(Property::kNoTemporaryFiles, !absl::StartsWith(entry.path().filename().string(), ".tmp-"))
          << "left over after restart: " << entry.path();
    }
  }

  // Remembers the first sighting of model/version (by its creation time, which
  // tells two writes of the same number apart) and checks it is new.
  void NoteListedVersion(const std::string& model, int64_t version, int64_t created_unix_ms) {
    auto [it, inserted] = listed_[model].emplace(version, created_unix_ms);
    if (!inserted) {
      Expect(Property::kNumberNeverGivenTwice, it->second == created_unix_ms)
          << model << "/" << version << " changed (created " << it->second << ", now " << created_unix_ms
          << "): a number was reused";
      return;
    }
    listed_now_[model].insert(version);
    if (!job_versions_[model].count(version)) {
      // Published by a job whose success nobody saw: a number never seen.
      Expect(Property::kNewNumbersAboveSeen, version > baseline_[model])
          << model << "/" << version << " is new but not above every number seen before (" << baseline_[model]
          << ")";
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
      Expect(Property::kNumberNeverGivenTwice, it->second == job.job_id())
          << job.model_name() << "/" << job.version() << " is claimed by jobs " << it->second << " and "
          << job.job_id() << ": a number was reused";
      return;
    }
    if (listed_at_restart) {
      Expect(Property::kNewNumbersAboveSeen, listed_now_[job.model_name()].count(job.version()) > 0)
          << "job " << job.job_id() << " is found SUCCEEDED with " << job.model_name() << "/" << job.version()
          << ", which is not a version first listed now";
      return;
    }
    Expect(Property::kNewNumbersAboveSeen, job.version() > baseline_[job.model_name()])
        << "job " << job.job_id() << " got version " << job.version() << " of " << job.model_name()
        << ", not above every number seen before this run (" << baseline_[job.model_name()] << ")";
  }

  // One runner, first in first out: along the submission order, the versions
  // of each model's successful jobs strictly increase, across runs too.
  void CheckVersionOrder() {
    std::map<std::string, int64_t> last;
    for (const std::string& id : job_order_) {
      const v1::TrainingJob& job = jobs_[id];
      if (job.state() != v1::JOB_STATE_SUCCEEDED) continue;
      Expect(Property::kVersionsFollowSubmissionOrder, job.version() > last[job.model_name()])
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

  // Every listed version serves; the listing matches what was listed before
  // and what is complete on disk.
  void CheckVersions() {
    listed_now_.clear();
    v1::ListModelsResponse models;
    const grpc::Status listed = stub_->ListModels(Context().get(), v1::ListModelsRequest(), &models);
    if (!listed.ok()) {
      Break(absl::StrCat("ListModels: ", listed.error_message()));
      return;
    }
    std::map<std::string, std::set<int64_t>> now;
    for (const v1::Model& model : models.models()) {
      for (const v1::ModelVersion& version : model.versions()) {
        now[model.name()].insert(version.version());
        NoteListedVersion(model.name(), version.version(), version.created_unix_ms());
        CheckVersionServes(model.name(), version.version());
      }
    }
    // A version listed once stays listed; nothing complete on disk is hidden.
    for (const auto& [model, versions] : listed_) {
      for (const auto& [version, created] : versions) {
        Expect(Property::kListedVersionsStayListed, now[model].count(version) > 0)
            << model << "/" << version << " was listed before a crash, not after";
      }
    }
    for (const fs::directory_entry& model : fs::directory_iterator(ModelDir())) {
      const std::string name = model.path().filename().string();
      if (!model.is_directory() || absl::StartsWith(name, ".")) continue;
      for (const fs::directory_entry& version : fs::directory_iterator(model.path())) {
        int64_t number = 0;
        if (!version.is_directory() || !absl::SimpleAtoi(version.path().filename().string(), &number)) continue;
        Expect(Property::kVersionDirectoriesListed, now[name].count(number) > 0)
            << version.path() << " is on disk but not listed";
      }
    }
  }

  // model/version exports its parameters, predicts, and its file verifies.
  void CheckVersionServes(const std::string& model, int64_t version) {
    const std::string where = absl::StrCat(model, "/", version);
    v1::GetModelRequest get;
    get.set_model_name(model);
    get.set_version(version);
    get.set_include_parameters(true);
    v1::GetModelResponse exported;
    const grpc::Status got = stub_->GetModel(Context().get(), get, &exported);
    Expect(Property::kListedVersionsServe, got.ok()) << where << ": GetModel: " << got.error_message();
    if (!got.ok()) return;
    Expect(Property::kListedVersionsServe, exported.model().versions_size() == 1)
        << where << ": GetModel returned " << exported.model().versions_size() << " versions";
    if (exported.model().versions_size() != 1) return;
    const v1::Parameters& parameters = exported.model().versions(0).parameters();
    Expect(Property::kListedVersionsServe,
           static_cast<size_t>(parameters.values_size()) == ParameterCount(parameters.feature_maps()))
        << where << ": " << parameters.values_size() << " parameters for feature_maps "
        << parameters.feature_maps();

    v1::PredictRequest predict;
    predict.set_model_name(model);
    predict.set_version(version);
    *predict.add_images() = PixelImage(BundledMnist().test.image(0));
    v1::PredictResponse prediction;
    const grpc::Status predicted = stub_->Predict(Context().get(), predict, &prediction);
    Expect(Property::kListedVersionsServe, predicted.ok()) << where << ": Predict: " << predicted.error_message();
    if (predicted.ok()) {
      Expect(Property::kListedVersionsServe, prediction.version() == version)
          << where << ": Predict answered with version " << prediction.version();
      Expect(Property::kListedVersionsServe, prediction.predictions_size() == 1)
          << where << ": " << prediction.predictions_size() << " predictions for one image";
    }

    const absl::StatusOr<Model> file =
        ReadModelFile(absl::StrCat(ModelDir(), "/", model, "/", version, "/model.cnvn"));
    Expect(Property::kListedVersionsServe, file.ok()) << where << ": " << file.status();
  }

  // The jobs right after a restart, against the client's last look at each.
  void CheckJobs() {
    v1::ListTrainingJobsResponse listed;
    const grpc::Status status = stub_->ListTrainingJobs(Context().get(), v1::ListTrainingJobsRequest(), &listed);
    if (!status.ok()) {
      Break(absl::StrCat("ListTrainingJobs: ", status.error_message()));
      return;
    }
    for (auto it = listed.jobs().rbegin(); it != listed.jobs().rend(); ++it) {  // oldest first
      const v1::TrainingJob& job = *it;
      Expect(Property::kNoJobActiveAfterRestart, IsFinal(job.state()))
          << "job " << job.job_id() << " is " << v1::JobState_Name(job.state()) << " right after a restart";
      if (!jobs_.count(job.job_id())) {
        // Accepted (and even started) while the server was dying: the client
        // never got the answer.
        Expect(Property::kUnansweredJobsInterrupted, absl::StartsWith(job.error(), kInterrupted))
            << job.DebugString();
        job_order_.push_back(job.job_id());
        jobs_[job.job_id()] = job;
        ++interrupted_;
      }
    }
    Expect(Property::kAcceptedJobsKept, static_cast<size_t>(listed.jobs_size()) == job_order_.size())
        << listed.jobs_size() << " jobs listed, " << job_order_.size() << " accepted in earlier runs";
    for (const std::string& id : job_order_) CheckJobAfterRestart(id);
  }

  // Job `id` now against the client's last look at it, which it replaces.
  void CheckJobAfterRestart(const std::string& id) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    v1::TrainingJob now;
    const grpc::Status status = stub_->GetTrainingJob(Context().get(), request, &now);
    Expect(Property::kAcceptedJobsKept, status.ok()) << "job " << id << " was forgotten: " << status.error_message();
    if (!status.ok()) return;
    v1::TrainingJob& before = jobs_[id];
    if (IsFinal(before.state())) {
      Expect(Property::kFinishedJobsUnchanged,
             now.state() == before.state() && now.version() == before.version() && now.error() == before.error() &&
                 now.epochs_size() == before.epochs_size())
          << "job " << id << " was " << v1::JobState_Name(before.state()) << " version " << before.version()
          << " after " << before.epochs_size() << " epochs (" << before.error() << "), now "
          << v1::JobState_Name(now.state()) << " version " << now.version() << " after " << now.epochs_size()
          << " epochs (" << now.error() << ")";
      return;
    }
    if (now.state() == v1::JOB_STATE_FAILED && absl::StartsWith(now.error(), kInterrupted)) {
      ++interrupted_;
      // It can have moved on from what the client saw, never back.
      if (before.state() == v1::JOB_STATE_RUNNING) {
        Expect(Property::kActiveJobsInterruptedOrSucceeded,
               absl::StartsWith(now.error(), absl::StrCat(kInterrupted, "running")))
            << "job " << id << " was seen RUNNING, now: " << now.error();
      }
      // A running job's record lags its memory by up to JobManager::kRecordInterval
      // of epochs, but its last epoch is recorded before it is shown.
      if (before.epochs_size() == before.hyperparameters().epochs()) {
        Expect(Property::kActiveJobsInterruptedOrSucceeded, now.epochs_size() == before.epochs_size())
            << "job " << id << " was seen after its last epoch (" << before.epochs_size() << "), now has "
            << now.epochs_size();
      }
    } else {
      // It finished between the client's last look and the kill.
      Expect(Property::kActiveJobsInterruptedOrSucceeded, now.state() == v1::JOB_STATE_SUCCEEDED)
          << "job " << id << " is " << v1::JobState_Name(now.state()) << ": " << now.error();
      if (now.state() == v1::JOB_STATE_SUCCEEDED) {
        NoteSucceeded(now, /*listed_at_restart=*/true);
        Expect(Property::kActiveJobsInterruptedOrSucceeded, listed_[now.model_name()].count(now.version()) > 0)
            << "job " << id << " SUCCEEDED with version " << now.version() << ", which is not listed";
      }
    }
    before = now;
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
      Expect(Property::kNoJobFailsWhileRunning, job.state() != v1::JOB_STATE_FAILED)
          << "job " << id << " FAILED: " << job.error();
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
        Expect(Property::kTrainFailsOnlyWhenDying, server.WaitForExit(absl::Seconds(30)).ok())
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

  TempDir dir_;
  std::mt19937_64 random_;
  std::unique_ptr<v1::ConvNet::Stub> stub_;
  std::string round_ = "set-up";  // the round running, for messages
  std::map<Property, std::vector<std::string>> violations_;
  std::string broken_;
  bool completed_ = false;
  std::map<std::string, std::map<int64_t, int64_t>> listed_;            // model -> version -> created_unix_ms
  std::map<std::string, std::set<int64_t>> listed_now_;                 // first listed at this restart
  std::map<std::string, std::map<int64_t, std::string>> job_versions_;  // model -> version -> job id
  std::map<std::string, int64_t> baseline_;    // model -> highest number seen before this run
  std::vector<std::string> job_order_;         // every accepted job, in order
  std::map<std::string, v1::TrainingJob> jobs_;  // the client's last look at each
  int submitted_ = 0;
  int kills_ = 0;
  int interrupted_ = 0;
};

class CrashRecoveryTest : public ::testing::Test {
 protected:
  // Runs the scenario once for the suite, seeded with CONVNET_CRASH_TEST_SEED
  // when set, else with the time.
  static void SetUpTestSuite() {
    uint64_t seed = absl::ToUnixNanos(absl::Now());
    if (const char* fixed = std::getenv("CONVNET_CRASH_TEST_SEED"); fixed != nullptr) {
      if (!absl::SimpleAtoi(fixed, &seed)) {
        bad_seed_ = new std::string(fixed);
        return;
      }
    }
    std::cout << "seed " << seed << std::endl;
    RecordProperty("seed", std::to_string(seed));
    scenario_ = new CrashRecoveryScenario(seed);
    scenario_->Run();
  }
  static void TearDownTestSuite() {
    delete scenario_;
    scenario_ = nullptr;
    delete bad_seed_;
    bad_seed_ = nullptr;
  }

  // Fails unless the scenario ran to its end and `property` held throughout,
  // listing the first violations.
  static void ExpectHeld(Property property) {
    ASSERT_EQ(bad_seed_, nullptr) << "CONVNET_CRASH_TEST_SEED is not a number: " << *bad_seed_;
    ASSERT_TRUE(scenario_->broken().empty()) << "the scenario could not go on: " << scenario_->broken();
    const std::vector<std::string>& violations = scenario_->Violations(property);
    constexpr size_t kShown = 10;
    EXPECT_TRUE(violations.empty())
        << violations.size() << " violations; the first ones:\n"
        << absl::StrJoin(violations.begin(), violations.begin() + std::min(violations.size(), kShown), "\n");
    EXPECT_TRUE(scenario_->completed()) << "the scenario stopped before its end";
  }

  static CrashRecoveryScenario* scenario_;
  static std::string* bad_seed_;
};

CrashRecoveryScenario* CrashRecoveryTest::scenario_ = nullptr;
std::string* CrashRecoveryTest::bad_seed_ = nullptr;

// --- The model repository ---------------------------------------------------

TEST_F(CrashRecoveryTest, NoTemporaryFileOutlivesARestart) { ExpectHeld(Property::kNoTemporaryFiles); }

TEST_F(CrashRecoveryTest, EveryListedVersionExportsPredictsAndVerifiesAfterEveryRestart) {
  ExpectHeld(Property::kListedVersionsServe);
}

TEST_F(CrashRecoveryTest, AVersionListedOnceIsListedAfterEveryLaterRestart) {
  ExpectHeld(Property::kListedVersionsStayListed);
}

TEST_F(CrashRecoveryTest, EveryVersionDirectoryOnDiskIsListedAfterARestart) {
  ExpectHeld(Property::kVersionDirectoriesListed);
}

// --- Version numbers --------------------------------------------------------

TEST_F(CrashRecoveryTest, AVersionNumberIsNeverGivenTwice) { ExpectHeld(Property::kNumberNeverGivenTwice); }

TEST_F(CrashRecoveryTest, ANewVersionIsNumberedAboveEveryNumberSeenBeforeItsRun) {
  ExpectHeld(Property::kNewNumbersAboveSeen);
}

TEST_F(CrashRecoveryTest, EachModelsSuccessfulJobsGetIncreasingVersionsInSubmissionOrder) {
  ExpectHeld(Property::kVersionsFollowSubmissionOrder);
}

// --- Jobs -------------------------------------------------------------------

TEST_F(CrashRecoveryTest, NoJobIsQueuedOrRunningRightAfterARestart) {
  ExpectHeld(Property::kNoJobActiveAfterRestart);
}

TEST_F(CrashRecoveryTest, EveryAcceptedJobIsStillKnownAfterEveryRestart) { ExpectHeld(Property::kAcceptedJobsKept); }

TEST_F(CrashRecoveryTest, AFinishedJobIsUnchangedByLaterKills) { ExpectHeld(Property::kFinishedJobsUnchanged); }

TEST_F(CrashRecoveryTest, AJobActiveAtAKillIsFailedAsInterruptedOrHasSucceededWithAListedVersion) {
  ExpectHeld(Property::kActiveJobsInterruptedOrSucceeded);
}

TEST_F(CrashRecoveryTest, AJobAcceptedWithoutAnAnswerBeforeAKillIsFailedAsInterrupted) {
  ExpectHeld(Property::kUnansweredJobsInterrupted);
}

TEST_F(CrashRecoveryTest, NoJobFailsWhileTheServerRuns) { ExpectHeld(Property::kNoJobFailsWhileRunning); }

TEST_F(CrashRecoveryTest, TrainFailsOnlyOnAServerOnItsWayDown) { ExpectHeld(Property::kTrainFailsOnlyWhenDying); }

TEST_F(CrashRecoveryTest, ANewJobAfterTheLastRestartSucceeds) {
  ExpectHeld(Property::kNewJobAfterLastRestartSucceeds);
}

// --- The scenario itself ----------------------------------------------------

TEST_F(CrashRecoveryTest, EveryRoundEndsInItsKillAndEveryCrashPointIsReached) {
  ExpectHeld(Property::kRoundsEndInTheirKill);
}

TEST_F(CrashRecoveryTest, TheKillsInterruptJobs) { ExpectHeld(Property::kKillsInterruptJobs); }

}  // namespace
}  // namespace convnet::server_testing
