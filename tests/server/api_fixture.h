// The fixture of the API tests: small datasets written as IDX files into a
// data_dir shared by the suite, a fresh model_dir per test, and the real
// server started in-process on an ephemeral port.
#ifndef CONVNET_TESTS_SERVER_API_FIXTURE_H_
#define CONVNET_TESTS_SERVER_API_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace convnet::server_testing {

class ApiTest : public ::testing::Test {
 protected:
  // "small": 1000 training and 200 test examples of the bundled MNIST.
  // "tiny": 50 training and 20 test examples.
  static constexpr size_t kSmallTrain = 1000;
  static constexpr size_t kSmallTest = 200;
  static constexpr size_t kTinyTrain = 50;
  static constexpr size_t kTinyTest = 20;

  static void SetUpTestSuite() {
    data_dir_ = new TempDir();
    const MnistDirectory& mnist = BundledMnist();
    WriteDataset(data_dir_->path(), "small", mnist.train.Prefix(kSmallTrain), mnist.test.Prefix(kSmallTest));
    WriteDataset(data_dir_->path(), "tiny", mnist.train.Prefix(kTinyTrain), mnist.test.Prefix(kTinyTest));
  }
  static void TearDownTestSuite() {
    delete data_dir_;
    data_dir_ = nullptr;
  }

  void SetUp() override { StartServer(Options()); }

  virtual server::ServerOptions Options() const {
    server::ServerOptions options;
    options.model_dir = model_dir_.path();
    options.data_dir = data_dir_->path();
    options.threads = 2;
    options.max_concurrent_jobs = 1;
    options.max_queued_jobs = 16;
    return options;
  }

  void StartServer(const server::ServerOptions& options) {
    server_.reset();
    server_ = TestServer::Start(options);
    ASSERT_NE(server_, nullptr);
  }

  v1::ConvNet::Stub& stub() { return server_->stub(); }

  // A job that keeps the (single) job slot busy until cancelled: K = 64 for
  // 1000 epochs of the small set is minutes of work even on a machine several
  // times faster than this one, and a cancellation stops it within a
  // mini-batch.
  std::string SubmitBlockingJob(const std::string& model = "blocker") {
    v1::TrainRequest request = FreshTrainRequest(model, 64, "small", 1000, 10);
    return SubmitJob(stub(), request);
  }

  // Polls GetTrainingJob until the job is RUNNING (a runner has taken it off
  // the queue); fails the test after a minute.
  void WaitUntilRunning(const std::string& job_id) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(job_id);
    for (const absl::Time give_up = absl::Now() + absl::Seconds(60); absl::Now() < give_up;) {
      v1::TrainingJob job;
      ASSERT_TRUE(stub().GetTrainingJob(Context().get(), request, &job).ok());
      if (job.state() == v1::JOB_STATE_RUNNING) return;
      ASSERT_EQ(job.state(), v1::JOB_STATE_QUEUED) << "job " << job_id << " ended before it was seen running";
      absl::SleepFor(absl::Milliseconds(2));
    }
    FAIL() << "job " << job_id << " never started";
  }

  grpc::Status Cancel(const std::string& job_id, v1::TrainingJob* job) {
    v1::CancelTrainingJobRequest request;
    request.set_job_id(job_id);
    return stub().CancelTrainingJob(Context().get(), request, job);
  }

  static const MnistDirectory& Mnist() { return BundledMnist(); }
  static Dataset SmallTrain() { return Mnist().train.Prefix(kSmallTrain); }
  static Dataset SmallTest() { return Mnist().test.Prefix(kSmallTest); }

  static inline TempDir* data_dir_ = nullptr;
  TempDir model_dir_;
  std::unique_ptr<TestServer> server_;
};

}  // namespace convnet::server_testing

#endif  // CONVNET_TESTS_SERVER_API_FIXTURE_H_
