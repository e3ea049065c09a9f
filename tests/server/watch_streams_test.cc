// WatchTrainingJob streams hold no thread while they wait for news: hundreds
// of open streams leave the server's thread count and Predict's latency as
// they were, and all of them end with their job's final snapshot. Beyond
// --max_watch_streams a new stream is refused until one closes.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api_fixture.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/client_callback.h"
#include "gtest/gtest.h"

namespace convnet::server_testing {
namespace {

// Threads of this process (the in-process server and its clients).
int ThreadCount() {
  int threads = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++threads;
  return threads;
}

// One WatchTrainingJob stream read on gRPC's callback API (no client thread
// per stream): it keeps the last message and the final status.
class WatchReader final : public grpc::ClientReadReactor<v1::WatchTrainingJobResponse> {
 public:
  WatchReader(v1::ConvNet::Stub& stub, const std::string& job_id) {
    request_.set_job_id(job_id);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    stub.async()->WatchTrainingJob(&context_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream has ended: OnDone follows
    {
      absl::MutexLock lock(&mu_);
      ++messages_;
      last_ = message_;
    }
    if (!opened_.HasBeenNotified()) opened_.Notify();
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = status;
    }
    if (!opened_.HasBeenNotified()) opened_.Notify();
    done_.Notify();
  }

  // True once the first message (or the end) has arrived.
  bool WaitOpened(absl::Duration timeout) { return opened_.WaitForNotificationWithTimeout(timeout); }
  bool WaitDone(absl::Duration timeout) { return done_.WaitForNotificationWithTimeout(timeout); }

  int messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  v1::WatchTrainingJobResponse last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  grpc::ClientContext context_;
  v1::WatchTrainingJobRequest request_;
  v1::WatchTrainingJobResponse message_;  // written by the library between StartRead and OnReadDone
  absl::Notification opened_;
  absl::Notification done_;
  absl::Mutex mu_;
  int messages_ ABSL_GUARDED_BY(mu_) = 0;
  v1::WatchTrainingJobResponse last_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class WatchStreamsTest : public ApiTest {
 protected:
  void PublishModel(const std::string& model) {
    auto parameters = Parameters::Initialize(1, 3);
    ASSERT_TRUE(parameters.ok()) << parameters.status();
    auto published = server_->server().repository().Publish(model, Model{*std::move(parameters), ModelMetadata{}});
    ASSERT_TRUE(published.ok()) << published.status();
  }

  // The median latency of `calls` sequential one-image Predicts, on a
  // channel of its own (its own connection).
  absl::Duration PredictMedian(const std::string& model, int calls) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                             grpc::InsecureChannelCredentials(), arguments);
    auto predict_stub = v1::ConvNet::NewStub(channel);
    v1::PredictRequest request;
    request.set_model_name(model);
    *request.add_images() = PixelImage(Mnist().test.image(0));
    std::vector<absl::Duration> latencies;
    for (int i = 0; i < calls + 10; ++i) {
      v1::PredictResponse response;
      const absl::Time start = absl::Now();
      const grpc::Status status = predict_stub->Predict(Context().get(), request, &response);
      const absl::Duration latency = absl::Now() - start;
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (i >= 10) latencies.push_back(latency);  // the first calls open the connection
    }
    std::sort(latencies.begin(), latencies.end());
    return latencies[latencies.size() / 2];
  }

  std::unique_ptr<grpc::ClientReader<v1::WatchTrainingJobResponse>> Watch(grpc::ClientContext* context,
                                                                        const std::string& job_id) {
    v1::WatchTrainingJobRequest request;
    request.set_job_id(job_id);
    return stub().WatchTrainingJob(context, request);
  }
};

TEST_F(WatchStreamsTest, FiveHundredOpenStreamsAddNoThreadsNorPredictLatencyAndAllEndWithTheFinalSnapshot) {
  constexpr int kStreams = 500;
  constexpr int kJobs = 5;  // one running, the others queued behind it
  PublishModel("digits");
  std::vector<std::string> jobs;
  for (int i = 0; i < kJobs; ++i) jobs.push_back(SubmitBlockingJob(absl::StrCat("blocker", i)));

  const absl::Duration idle = PredictMedian("digits", 200);
  const int threads_before = ThreadCount();

  std::vector<std::unique_ptr<WatchReader>> readers;
  for (int i = 0; i < kStreams; ++i) readers.push_back(std::make_unique<WatchReader>(stub(), jobs[i % kJobs]));
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(readers[i]->WaitOpened(absl::Seconds(120))) << "stream " << i << " never started";
    ASSERT_GE(readers[i]->messages(), 1) << "stream " << i << " ended at once: " << readers[i]->status().error_message();
  }
  const int threads_open = ThreadCount();
  const absl::Duration loaded = PredictMedian("digits", 200);

  EXPECT_LT(threads_open - threads_before, 50) << threads_before << " threads before the streams, " << threads_open
                                               << " with " << kStreams << " open";
  EXPECT_LE(loaded, 2 * idle + absl::Milliseconds(2))
      << "Predict p50 " << absl::FormatDuration(idle) << " idle, " << absl::FormatDuration(loaded) << " with "
      << kStreams << " open streams";

  for (const std::string& job : jobs) {
    v1::TrainingJob cancelled;
    const grpc::Status status = Cancel(job, &cancelled);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(readers[i]->WaitDone(absl::Seconds(120))) << "stream " << i << " did not end";
    EXPECT_TRUE(readers[i]->status().ok()) << "stream " << i << ": " << readers[i]->status().error_message();
    const v1::WatchTrainingJobResponse last = readers[i]->last();
    ASSERT_TRUE(last.has_job()) << "stream " << i << " did not end with a snapshot";
    EXPECT_EQ(last.job().state(), v1::JOB_STATE_CANCELLED) << "stream " << i;
    EXPECT_EQ(last.job().job_id(), jobs[i % kJobs]) << "stream " << i;
  }
}

class WatchStreamCapTest : public WatchStreamsTest {
 protected:
  static constexpr int kCap = 2;
  server::ServerOptions Options() const override {
    server::ServerOptions options = ApiTest::Options();
    options.max_watch_streams = kCap;
    return options;
  }
};

TEST_F(WatchStreamCapTest, AStreamBeyondMaxWatchStreamsIsRefusedNamingTheFlagUntilOneCloses) {
  const std::string job = SubmitBlockingJob();
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchTrainingJobResponse>>> open;
  v1::WatchTrainingJobResponse message;
  for (int i = 0; i < kCap; ++i) {
    contexts.push_back(Context());
    open.push_back(Watch(contexts.back().get(), job));
    ASSERT_TRUE(open.back()->Read(&message)) << "stream " << i << " of " << kCap << " refused: "
                                             << open.back()->Finish().error_message();
  }

  {
    auto context = Context();
    auto refused = Watch(context.get(), job);
    EXPECT_FALSE(refused->Read(&message));
    const grpc::Status status = refused->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_NE(status.error_message().find("--max_watch_streams=2"), std::string::npos) << status.error_message();
  }

  contexts[0]->TryCancel();
  EXPECT_EQ(open[0]->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server frees the slot when it has seen the cancellation.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  bool accepted = false;
  while (!accepted && absl::Now() < give_up) {
    contexts[0] = Context();
    open[0] = Watch(contexts[0].get(), job);
    accepted = open[0]->Read(&message);
    if (!accepted) {
      const grpc::Status status = open[0]->Finish();
      ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  EXPECT_TRUE(accepted) << "no new stream accepted within 30 s after one closed";

  v1::TrainingJob cancelled;
  ASSERT_TRUE(Cancel(job, &cancelled).ok());
  for (size_t i = 0; i < open.size(); ++i) {
    while (open[i]->Read(&message)) {
    }
    const grpc::Status status = open[i]->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(message.has_job());
    EXPECT_EQ(message.job().state(), v1::JOB_STATE_CANCELLED);
  }
}

}  // namespace
}  // namespace convnet::server_testing
