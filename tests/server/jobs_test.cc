// Training jobs over the API: the watch stream, cancellation, the queue limit,
// Predict while versions are being published, restarts (with the job records
// they keep) and shutdown.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "api_fixture.h"
#include "core/network.h"
#include "google/protobuf/util/message_differencer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/job_store.h"
#include "server/paging.h"

namespace convnet::server_testing {
namespace {

class JobsTest : public ApiTest {
 protected:
  // Polls until the job is RUNNING (fails the test after 30 s).
  void WaitUntilRunning(const std::string& id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    v1::TrainingJob job;
    while (absl::Now() < deadline) {
      ASSERT_TRUE(stub().GetTrainingJob(Context().get(), request, &job).ok());
      if (job.state() == v1::JOB_STATE_RUNNING) return;
      ASSERT_EQ(job.state(), v1::JOB_STATE_QUEUED);
      absl::SleepFor(absl::Milliseconds(2));
    }
    FAIL() << "job " << id << " never started";
  }

  std::vector<std::string> ModelNames() {
    v1::ListModelsResponse response;
    EXPECT_TRUE(stub().ListModels(Context().get(), v1::ListModelsRequest(), &response).ok());
    std::vector<std::string> names;
    for (const v1::Model& model : response.models()) names.push_back(model.name());
    return names;
  }
};

// Reads a whole watch stream.
struct WatchLog {
  std::vector<v1::WatchTrainingJobResponse> messages;
  grpc::Status status;
};

WatchLog ReadAll(grpc::ClientReader<v1::WatchTrainingJobResponse>& reader) {
  WatchLog log;
  v1::WatchTrainingJobResponse message;
  while (reader.Read(&message)) log.messages.push_back(message);
  log.status = reader.Finish();
  return log;
}

// Watches `job_id` and reads its stream until the server ends it: at once,
// after a final snapshot, for a job that has already finished.
WatchLog WatchToTheEnd(v1::ConvNet::Stub& stub, const std::string& job_id) {
  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(job_id);
  auto context = Context();
  auto reader = stub.WatchTrainingJob(context.get(), watch);
  return ReadAll(*reader);
}

TEST_F(JobsTest, WatchStreamsStatesProgressAndEpochsInTheOrderTheyHappen) {
  // Hold the only job slot so that the watched job is still QUEUED when the
  // watch starts: the whole run is then observed live.
  const std::string blocker = SubmitBlockingJob();
  WaitUntilRunning(blocker);
  v1::TrainRequest request = FreshTrainRequest("watched", 1, "small", 3, 10);
  request.set_eval_dataset("small");
  request.mutable_hyperparameters()->set_progress_every(100);
  const std::string id = SubmitJob(stub(), request);

  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(id);
  auto context = Context();
  auto reader = stub().WatchTrainingJob(context.get(), watch);
  v1::WatchTrainingJobResponse first;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_TRUE(first.has_job());
  EXPECT_EQ(first.job().state(), v1::JOB_STATE_QUEUED);
  v1::TrainingJob cancelled;
  ASSERT_TRUE(Cancel(blocker, &cancelled).ok());

  const WatchLog log = ReadAll(*reader);
  ASSERT_TRUE(log.status.ok()) << log.status.error_message();
  ASSERT_FALSE(log.messages.empty());

  std::vector<v1::JobState> states;
  std::vector<int> epochs;
  int progress_reports = 0;
  int last_epoch = 0;
  int64_t last_samples = 0;
  for (size_t i = 0; i + 1 < log.messages.size(); ++i) {
    const v1::WatchTrainingJobResponse& message = log.messages[i];
    switch (message.update_case()) {
      case v1::WatchTrainingJobResponse::kState:
        states.push_back(message.state());
        break;
      case v1::WatchTrainingJobResponse::kEpoch:
        ASSERT_EQ(states, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING}) << "epochs come while RUNNING";
        epochs.push_back(message.epoch().epoch());
        EXPECT_EQ(message.epoch().test_examples(), static_cast<int64_t>(kSmallTest));
        EXPECT_GT(message.epoch().test_accuracy(), 0.0);
        break;
      case v1::WatchTrainingJobResponse::kProgress: {
        ++progress_reports;
        const v1::TrainingProgress& p = message.progress();
        ASSERT_EQ(states, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING}) << "progress comes while RUNNING";
        // A report of epoch e comes after the metrics of epochs 1..e-1 and
        // before those of epoch e.
        EXPECT_EQ(static_cast<int>(epochs.size()), p.epoch() - 1) << "progress of epoch " << p.epoch();
        EXPECT_EQ(p.samples_total(), static_cast<int64_t>(kSmallTrain));
        EXPECT_GT(p.samples_done(), 0);
        EXPECT_LE(p.samples_done(), p.samples_total());
        EXPECT_TRUE(p.epoch() > last_epoch || (p.epoch() == last_epoch && p.samples_done() > last_samples))
            << "progress went backwards";
        last_epoch = p.epoch();
        last_samples = p.samples_done();
        break;
      }
      case v1::WatchTrainingJobResponse::kJob:
        ADD_FAILURE() << "a snapshot in the middle of the stream";
        break;
      default:
        ADD_FAILURE() << "an empty update";
    }
  }
  EXPECT_EQ(states, (std::vector<v1::JobState>{v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED}));
  EXPECT_EQ(epochs, (std::vector<int>{1, 2, 3}));
  EXPECT_GT(progress_reports, 0);
  const v1::WatchTrainingJobResponse& last = log.messages.back();
  ASSERT_TRUE(last.has_job());
  EXPECT_EQ(last.job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(last.job().version(), 1);
  EXPECT_EQ(last.job().epochs_size(), 3);
}

TEST_F(JobsTest, WatchingAFinishedJobReplaysItsEpochsInOrder) {
  const std::string id = SubmitJob(stub(), FreshTrainRequest("m", 1, "tiny", 4, 10));
  ASSERT_EQ(WaitForJob(stub(), id).state(), v1::JOB_STATE_SUCCEEDED);
  const WatchLog log = WatchToTheEnd(stub(), id);
  ASSERT_TRUE(log.status.ok()) << log.status.error_message();
  ASSERT_EQ(log.messages.size(), 6u);  // snapshot, 4 epochs, final snapshot
  EXPECT_EQ(log.messages.front().job().state(), v1::JOB_STATE_SUCCEEDED);
  for (int e = 1; e <= 4; ++e) EXPECT_EQ(log.messages[e].epoch().epoch(), e);
  EXPECT_EQ(log.messages.back().job().state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(JobsTest, CancellingMidEpochStopsTheJobWithoutPublishingAVersion) {
  v1::TrainRequest request = FreshTrainRequest("m", 1, "small", 1000, 10);
  request.mutable_hyperparameters()->set_progress_every(50);
  const std::string id = SubmitJob(stub(), request);
  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(id);
  auto context = Context();
  auto reader = stub().WatchTrainingJob(context.get(), watch);

  // Wait for a report from the middle of the second epoch (or later).
  v1::WatchTrainingJobResponse message;
  v1::TrainingProgress seen;
  while (reader->Read(&message)) {
    if (message.has_progress() && message.progress().epoch() >= 2 && message.progress().samples_done() > 0 &&
        message.progress().samples_done() < message.progress().samples_total()) {
      seen = message.progress();
      break;
    }
  }
  ASSERT_GE(seen.epoch(), 2) << "no mid-epoch progress report arrived";

  v1::TrainingJob job;
  const grpc::Status status = Cancel(id, &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(job.cancel_requested());
  EXPECT_NE(job.error().find("cancelled by CancelTrainingJob"), std::string::npos) << job.error();
  EXPECT_LT(job.epochs_size(), 1000);
  EXPECT_GE(job.progress().epoch(), seen.epoch());
  EXPECT_EQ(job.version(), 0);

  const WatchLog rest = ReadAll(*reader);
  ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
  ASSERT_FALSE(rest.messages.empty());
  EXPECT_EQ(rest.messages.back().job().state(), v1::JOB_STATE_CANCELLED);
  ASSERT_GE(rest.messages.size(), 2u);
  EXPECT_EQ(rest.messages[rest.messages.size() - 2].state(), v1::JOB_STATE_CANCELLED);

  EXPECT_TRUE(ModelNames().empty());
  EXPECT_FALSE(std::filesystem::exists(model_dir_.Join("m/1")));
  v1::TrainingJob again;
  EXPECT_EQ(Cancel(id, &again).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(JobsTest, CancellingAQueuedJobCancelsItBeforeItStarts) {
  const std::string blocker = SubmitBlockingJob();
  const std::string queued = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));
  v1::TrainingJob job;
  ASSERT_TRUE(Cancel(queued, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.started_unix_ms(), 0);
  EXPECT_NE(job.error().find("before it started"), std::string::npos) << job.error();
  ASSERT_TRUE(Cancel(blocker, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(ModelNames().empty());
}

TEST_F(JobsTest, AFullQueueIsResourceExhaustedUntilASlotFrees) {
  server::ServerOptions options = Options();
  options.max_concurrent_jobs = 1;
  options.max_queued_jobs = 2;
  StartServer(options);
  const std::string running = SubmitBlockingJob();
  const std::string queued1 = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));
  const std::string queued2 = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));

  v1::TrainResponse response;
  const grpc::Status full = stub().Train(Context().get(), FreshTrainRequest("q", 1, "tiny", 1, 10), &response);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(full.error_message().find("training job queue is full"), std::string::npos) << full.error_message();
  EXPECT_NE(full.error_message().find("--max_queued_jobs=2"), std::string::npos) << full.error_message();

  v1::TrainingJob job;
  ASSERT_TRUE(Cancel(queued2, &job).ok());
  const std::string accepted = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));
  EXPECT_FALSE(accepted.empty());
  ASSERT_TRUE(Cancel(running, &job).ok());
  EXPECT_EQ(WaitForJob(stub(), queued1).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(WaitForJob(stub(), accepted).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(JobsTest, ConcurrentJobsRunSideBySideWhilePredictStaysResponsive) {
  server::ServerOptions options = Options();
  options.max_concurrent_jobs = 2;
  StartServer(options);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("c", 1, "tiny", 1, 10)), 1);
  const std::string a = SubmitBlockingJob("a");
  const std::string b = SubmitBlockingJob("b");
  WaitUntilRunning(a);
  WaitUntilRunning(b);

  v1::PredictRequest predict;
  predict.set_model_name("c");
  *predict.add_images() = PixelImage(SmallTest().image(0));
  for (int i = 0; i < 20; ++i) {
    v1::PredictResponse response;
    const grpc::Status status = stub().Predict(Context(absl::Seconds(5)).get(), predict, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::TrainingJob job;
  for (const std::string& id : {a, b}) {
    ASSERT_TRUE(Cancel(id, &job).ok());
    EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  }
}

TEST_F(JobsTest, PredictDuringTrainingAlwaysMatchesExactlyOnePublishedVersion) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10)), 1);
  const Dataset test = SmallTest();
  constexpr int kImages = 4;
  constexpr int kJobs = 5;
  v1::PredictRequest predict;
  predict.set_model_name("m");
  for (int i = 0; i < kImages; ++i) *predict.add_images() = PixelImage(test.image(i));

  struct Answer {
    int64_t version;
    std::vector<float> outputs;  // kImages x 10
  };
  absl::Mutex mu;
  std::vector<std::vector<Answer>> answers(2);
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&, c] {
      while (!stop.load()) {
        v1::PredictResponse response;
        const grpc::Status status = stub().Predict(Context().get(), predict, &response);
        if (!status.ok()) {
          ADD_FAILURE() << status.error_message();
          return;
        }
        Answer answer{response.version(), {}};
        for (const v1::ImagePrediction& p : response.predictions()) {
          answer.outputs.insert(answer.outputs.end(), p.outputs().begin(), p.outputs().end());
        }
        absl::MutexLock lock(&mu);
        answers[c].push_back(std::move(answer));
      }
    });
  }
  auto answered_version = [&](int64_t version) {
    absl::MutexLock lock(&mu);
    for (const auto& list : answers) {
      if (list.empty() || list.back().version != version) return false;
    }
    return true;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!answered_version(1) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));

  std::vector<std::string> ids;
  for (int j = 0; j < kJobs; ++j) {
    v1::TrainRequest request = FreshTrainRequest("m", 1, "small", 2, 10);
    request.mutable_init_from()->set_version(0);
    request.mutable_hyperparameters()->set_seed(100 + j);
    ids.push_back(SubmitJob(stub(), request));
  }
  for (const std::string& id : ids) ASSERT_EQ(WaitForJob(stub(), id).state(), v1::JOB_STATE_SUCCEEDED);
  while (!answered_version(1 + kJobs) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  stop.store(true);
  for (std::thread& client : clients) client.join();

  std::map<int64_t, std::vector<float>> expected;
  for (int64_t version = 1; version <= 1 + kJobs; ++version) {
    const Parameters parameters = ExportParameters(stub(), "m", version);
    auto predictions = convnet::Predict(
        parameters, ImageBatch::FromPixels(absl::MakeConstSpan(test.images).subspan(0, kImages * kPixels)), nullptr);
    ASSERT_TRUE(predictions.ok());
    for (const Prediction& p : *predictions) expected[version].insert(expected[version].end(), p.a3.begin(), p.a3.end());
  }
  std::set<int64_t> versions_seen;
  for (const auto& list : answers) {
    int64_t previous = 0;
    for (const Answer& answer : list) {
      ASSERT_TRUE(expected.count(answer.version)) << "unknown version " << answer.version;
      EXPECT_EQ(answer.outputs, expected[answer.version]) << "answer of version " << answer.version;
      EXPECT_GE(answer.version, previous) << "the latest version went backwards";
      previous = answer.version;
      versions_seen.insert(answer.version);
    }
  }
  EXPECT_TRUE(versions_seen.count(1) && versions_seen.count(1 + kJobs));
}

TEST_F(JobsTest, ARestartedServerServesTheSameVersionsWithIdenticalOutputs) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10)), 1);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 2, "tiny", 2, 10)), 2);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("n", 1, "tiny", 1, 25)), 1);

  const Dataset test = SmallTest();
  auto snapshot = [&](v1::ListModelsResponse* models, std::vector<v1::PredictResponse>* predictions,
                      v1::GetGradientsResponse* gradients) {
    ASSERT_TRUE(stub().ListModels(Context().get(), v1::ListModelsRequest(), models).ok());
    for (const auto& [model, version] : std::vector<std::pair<std::string, int64_t>>{{"m", 1}, {"m", 2}, {"m", 0}, {"n", 0}}) {
      v1::PredictRequest request;
      request.set_model_name(model);
      request.set_version(version);
      for (int i = 0; i < 8; ++i) *request.add_images() = PixelImage(test.image(i));
      predictions->emplace_back();
      ASSERT_TRUE(stub().Predict(Context().get(), request, &predictions->back()).ok());
    }
    v1::GetGradientsRequest request;
    AddExamples(test, 5, request.mutable_examples());
    request.mutable_model()->set_model_name("m");
    request.set_cost(v1::COST_QUADRATIC);
    ASSERT_TRUE(stub().GetGradients(Context().get(), request, gradients).ok());
  };
  v1::ListModelsResponse models_before;
  std::vector<v1::PredictResponse> predictions_before;
  v1::GetGradientsResponse gradients_before;
  snapshot(&models_before, &predictions_before, &gradients_before);

  server_->Shutdown(absl::Seconds(1));
  StartServer(Options());  // a new instance on the same model_dir

  v1::ListModelsResponse models_after;
  std::vector<v1::PredictResponse> predictions_after;
  v1::GetGradientsResponse gradients_after;
  snapshot(&models_after, &predictions_after, &gradients_after);
  using google::protobuf::util::MessageDifferencer;
  EXPECT_TRUE(MessageDifferencer::Equals(models_before, models_after))
      << models_before.DebugString() << "\nvs\n" << models_after.DebugString();
  ASSERT_EQ(predictions_before.size(), predictions_after.size());
  for (size_t i = 0; i < predictions_before.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(predictions_before[i], predictions_after[i])) << "prediction " << i;
  }
  EXPECT_TRUE(MessageDifferencer::Equals(gradients_before, gradients_after));
  EXPECT_EQ(predictions_after[2].version(), 2);

  // Version numbers continue; none is reused.
  EXPECT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10)), 3);
}

TEST_F(JobsTest, ShutdownCancelsRunningAndQueuedJobsAndEndsTheirWatchStreams) {
  const std::string running = SubmitBlockingJob();
  const std::string queued = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));
  WaitUntilRunning(running);

  WatchLog log;
  auto context = Context();
  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(running);
  auto reader = stub().WatchTrainingJob(context.get(), watch);
  v1::WatchTrainingJobResponse first;
  ASSERT_TRUE(reader->Read(&first));
  std::thread watcher([&] { log = ReadAll(*reader); });

  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  watcher.join();

  for (const std::string& id : {running, queued}) {
    auto job = server_->server().jobs().Get(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state, server::JobState::kCancelled) << id;
    EXPECT_NE(job->error.find("server is shutting down"), std::string::npos) << job->error;
  }
  ASSERT_TRUE(log.status.ok()) << log.status.error_message();
  ASSERT_FALSE(log.messages.empty());
  EXPECT_EQ(log.messages.back().job().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(server_->server().repository().List().empty());
}

v1::TrainingJob GetJob(v1::ConvNet::Stub& stub, const std::string& id, grpc::Status* status = nullptr) {
  v1::GetTrainingJobRequest request;
  request.set_job_id(id);
  v1::TrainingJob job;
  const grpc::Status result = stub.GetTrainingJob(Context().get(), request, &job);
  if (status != nullptr) *status = result;
  else EXPECT_TRUE(result.ok()) << id << ": " << result.error_message();
  return job;
}

std::vector<std::string> ListedJobIds(v1::ConvNet::Stub& stub) {
  std::vector<std::string> ids;
  v1::ListTrainingJobsRequest request;
  request.set_page_size(server::kMaxPageSize);
  do {
    v1::ListTrainingJobsResponse page;
    const grpc::Status status = stub.ListTrainingJobs(Context().get(), request, &page);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) break;
    for (const v1::TrainingJob& job : page.jobs()) ids.push_back(job.job_id());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return ids;
}

// A job record as the server writes it, for a job of a previous run.
server::JobInfo RecordedJob(const std::string& id, server::JobState state) {
  server::JobInfo job;
  job.id = id;
  job.model_name = "old";
  job.state = state;
  job.feature_maps = 1;
  job.train_dataset = "tiny";
  job.train_examples = 50;
  job.options.epochs = 3;
  job.created = absl::Now() - absl::Minutes(5);
  if (state != server::JobState::kQueued) {
    job.started = job.created + absl::Seconds(1);
    job.epochs.push_back(EpochMetrics{1, 0.5, 0, 0, 0, 0.1});
    job.progress = TrainProgress{2, 20, 50, 0.4};
  }
  if (server::IsTerminal(state)) job.finished = job.started + absl::Seconds(2);
  return job;
}

TEST_F(JobsTest, FinishedJobsAreListedAgainAfterARestartExactlyAsBefore) {
  const std::string succeeded = SubmitJob(stub(), FreshTrainRequest("m", 1, "tiny", 2, 10));
  ASSERT_EQ(WaitForJob(stub(), succeeded).state(), v1::JOB_STATE_SUCCEEDED);
  const std::string cancelled = SubmitBlockingJob();
  WaitUntilRunning(cancelled);
  v1::TrainingJob cancelled_job;
  ASSERT_TRUE(Cancel(cancelled, &cancelled_job).ok());
  ASSERT_EQ(cancelled_job.state(), v1::JOB_STATE_CANCELLED);
  const v1::TrainingJob succeeded_before = GetJob(stub(), succeeded);
  const v1::TrainingJob cancelled_before = GetJob(stub(), cancelled);
  EXPECT_TRUE(std::filesystem::exists(model_dir_.Join(".jobs/" + succeeded + ".job")));

  server_->Shutdown(absl::Seconds(1));
  StartServer(Options());

  using google::protobuf::util::MessageDifferencer;
  EXPECT_TRUE(MessageDifferencer::Equals(GetJob(stub(), succeeded), succeeded_before))
      << GetJob(stub(), succeeded).DebugString() << "\nvs\n" << succeeded_before.DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(GetJob(stub(), cancelled), cancelled_before));
  EXPECT_EQ(ListedJobIds(stub()), (std::vector<std::string>{cancelled, succeeded}));  // newest first

  // A restored job can be watched (its epochs replayed) but not cancelled.
  const WatchLog log = WatchToTheEnd(stub(), succeeded);
  ASSERT_TRUE(log.status.ok()) << log.status.error_message();
  ASSERT_EQ(log.messages.size(), 4u);  // snapshot, 2 epochs, final snapshot
  EXPECT_EQ(log.messages[2].epoch().epoch(), 2);
  v1::TrainingJob ignored;
  EXPECT_EQ(Cancel(succeeded, &ignored).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // A new job gets a new id and the next version.
  const std::string next = SubmitJob(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10));
  EXPECT_NE(next, succeeded);
  EXPECT_NE(next, cancelled);
  EXPECT_EQ(WaitForJob(stub(), next).version(), 2);
}

TEST_F(JobsTest, AJobRecordedAsQueuedOrRunningIsFailedAsInterruptedAfterARestart) {
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  // What a server killed with one job running and one queued leaves behind;
  // their run number lies in the future, so a clock that went backwards (or
  // simply a fast restart) must not lead to the same ids again.
  const std::string running = "99999999999999-1";
  const std::string queued = "99999999999999-2";
  const std::string done = "99999999999998-7";
  {
    auto store = server::JobStore::Open(model_dir_.Join(".jobs"));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Save(RecordedJob(running, server::JobState::kRunning)).ok());
    ASSERT_TRUE((*store)->Save(RecordedJob(queued, server::JobState::kQueued)).ok());
    ASSERT_TRUE((*store)->Save(RecordedJob(done, server::JobState::kSucceeded)).ok());
  }
  StartServer(Options());

  const v1::TrainingJob was_running = GetJob(stub(), running);
  EXPECT_EQ(was_running.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(was_running.error(),
            "interrupted: the server stopped while the job was running (crash or kill); submit it again");
  EXPECT_EQ(was_running.epochs_size(), 1);  // what it had done is kept
  EXPECT_GT(was_running.finished_unix_ms(), 0);
  const v1::TrainingJob was_queued = GetJob(stub(), queued);
  EXPECT_EQ(was_queued.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(was_queued.error(),
            "interrupted: the server stopped while the job was queued (crash or kill); submit it again");
  EXPECT_EQ(GetJob(stub(), done).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(server_->server().jobs().ActiveJobs(), 0);

  // The new state is on disk too: the next restart does not decide again.
  {
    auto store = server::JobStore::Open(model_dir_.Join(".jobs"));
    ASSERT_TRUE(store.ok());
    auto loaded = (*store)->Load();
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded->jobs.size(), 3u);
    for (const server::JobInfo& job : loaded->jobs) EXPECT_TRUE(server::IsTerminal(job.state)) << job.id;
  }

  const std::string next = SubmitJob(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10));
  EXPECT_EQ(next.substr(0, next.find('-')), "100000000000000") << next;
  EXPECT_EQ(WaitForJob(stub(), next).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ListedJobIds(stub()), (std::vector<std::string>{next, queued, running, done}));
}

TEST_F(JobsTest, OnlyTheNewestFinishedJobsAndTheirRecordsAreKeptAcrossRestarts) {
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  constexpr int kRecorded = static_cast<int>(server::JobManager::kMaxFinishedJobs) + 5;
  std::filesystem::create_directories(model_dir_.Join(".jobs"));
  for (int i = 1; i <= kRecorded; ++i) {
    const std::string id = absl::StrCat("1000-", i);
    std::ofstream(model_dir_.Join(".jobs/" + id + ".job"), std::ios::binary)
        << server::EncodeJobRecord(RecordedJob(id, server::JobState::kFailed));
  }
  StartServer(Options());

  const std::vector<std::string> ids = ListedJobIds(stub());
  ASSERT_EQ(ids.size(), server::JobManager::kMaxFinishedJobs);
  EXPECT_EQ(ids.front(), absl::StrCat("1000-", kRecorded));
  EXPECT_EQ(ids.back(), "1000-6");
  for (int i = 1; i <= 5; ++i) {
    const std::string id = absl::StrCat("1000-", i);
    grpc::Status status;
    GetJob(stub(), id, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << id;
    EXPECT_FALSE(std::filesystem::exists(model_dir_.Join(".jobs/" + id + ".job"))) << id;
  }
  EXPECT_TRUE(std::filesystem::exists(model_dir_.Join(".jobs/1000-6.job")));
}

// The names in a directory, sorted ("." entries included).
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(JobsTest, ATrainRequestWithoutHyperparametersTrainsWithTheDocumentedDefaults) {
  v1::TrainRequest request = FreshTrainRequest("defaults", 1, "tiny", 1, 10);
  request.clear_hyperparameters();
  const v1::TrainingJob job = WaitForJob(stub(), SubmitJob(stub(), request));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  const v1::Hyperparameters& used = job.hyperparameters();
  EXPECT_EQ(used.epochs(), 1);
  EXPECT_EQ(used.batch_size(), 10);
  EXPECT_EQ(used.learning_rate(), 0.5);
  EXPECT_EQ(used.l2(), 0.0);
  EXPECT_EQ(used.cost(), v1::COST_CROSS_ENTROPY);
  EXPECT_EQ(used.progress_every(), 1000);
  EXPECT_EQ(used.seed(), 0u);  // a seed like any other: never replaced
  EXPECT_EQ(job.epochs_size(), 1);
}

TEST_F(JobsTest, ADivergedJobFailsWithTheReasonAndPublishesNothing) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("steady", 1, "tiny", 1, 10)), 1);
  // l2 = 1e4 on 20 examples: each step scales the weights by 1 - 0.5 * 1e4 / 20 = -249.
  v1::TrainRequest request;
  request.set_model_name("steady");
  request.set_feature_maps(1);
  AddExamples(Mnist().train, 20, request.mutable_train_examples()->mutable_examples());
  *request.mutable_hyperparameters() = TestHyperparameters(3, 1);
  request.mutable_hyperparameters()->set_l2(1e4);
  const v1::TrainingJob job = WaitForJob(stub(), SubmitJob(stub(), request));
  ASSERT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.error(), testing::HasSubstr("diverged at epoch 1: "));
  EXPECT_THAT(job.error(), testing::HasSubstr("try a smaller learning_rate or l2"));

  v1::GetModelRequest get;
  get.set_model_name("steady");
  v1::GetModelResponse model;
  ASSERT_TRUE(stub().GetModel(Context().get(), get, &model).ok());
  EXPECT_EQ(model.model().latest_version(), 1);
  EXPECT_EQ(Entries(model_dir_.Join("steady")), (std::vector<std::string>{".highest_version", "1"}));
}

TEST_F(JobsTest, AFastJobRewritesItsRecordFarLessOftenThanOncePerEpoch) {
  // 1000 epochs of one example take well under a second, far less than
  // JobManager::kRecordInterval per 10 epochs even on a slow machine.
  v1::TrainRequest request;
  request.set_model_name("quick");
  request.set_feature_maps(1);
  AddExamples(Mnist().train, 1, request.mutable_train_examples()->mutable_examples());
  *request.mutable_hyperparameters() = TestHyperparameters(1000, 1);
  const int64_t writes_before = server_->server().jobs().RecordWrites();
  const v1::TrainingJob job = WaitForJob(stub(), SubmitJob(stub(), request));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.epochs_size(), 1000);
  EXPECT_LT(server_->server().jobs().RecordWrites() - writes_before, 100);

  // The final record holds every epoch.
  server_->Shutdown(absl::Seconds(1));
  StartServer(Options());
  EXPECT_EQ(GetJob(stub(), job.job_id()).epochs_size(), 1000);
}

}  // namespace
}  // namespace convnet::server_testing
