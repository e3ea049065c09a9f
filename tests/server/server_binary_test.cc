// The convnet_server binary as an operator runs it: flags, the start-up log,
// and SIGTERM / SIGINT with a training job running (the job ends CANCELLED,
// the process exits 0).
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "standard_services_client.h"
#include "test_support.h"
#include "tests/support/server_process.h"

namespace convnet::server_testing {
namespace {

using convnet::testing::ServerProcess;

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteDataset(dir_.Join("data"), "small", BundledMnist().train.Prefix(1000), BundledMnist().test.Prefix(100));
  }
  // Starts the binary with `flags`, its log in `log_name`; null (with a test
  // failure) when it cannot be spawned.
  std::unique_ptr<ServerProcess> Start(const std::vector<std::string>& flags, const std::string& log_name) const {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(CONVNET_SERVER_BINARY, flags, dir_.Join(log_name));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  std::vector<std::string> Flags() const {
    return {"--address=127.0.0.1:0", "--model_dir=" + dir_.Join("models"), "--data_dir=" + dir_.Join("data"),
            "--threads=2"};
  }
  TempDir dir_;
};

void StopWithSignalWhileTraining(ServerProcess& server, int port, int signal_number) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  wire::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(channel, "convnet.v1.ConvNet", &health).ok());
  EXPECT_EQ(health.status(), wire::HealthCheckResponse::SERVING);

  auto stub = v1::ConvNet::NewStub(channel);
  const std::string id = SubmitJob(*stub, FreshTrainRequest("digits", 1, "small", 1000, 10));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  v1::TrainingJob job;
  while (job.state() != v1::JOB_STATE_RUNNING && absl::Now() < deadline) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    ASSERT_TRUE(stub->GetTrainingJob(Context().get(), request, &job).ok());
  }
  ASSERT_EQ(job.state(), v1::JOB_STATE_RUNNING);

  // The client keeps its connection open: the server must not wait for it.
  const absl::Time signalled = absl::Now();
  ASSERT_TRUE(server.Signal(signal_number).ok());
  const absl::StatusOr<int> status = server.WaitForExit(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << "the server did not exit";
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(3)) << "shutdown waited for an idle connection";
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  const std::string log = server.Log();
  EXPECT_NE(log.find(absl::StrCat("job ", id, " (model \"digits\"): RUNNING -> CANCELLED")), std::string::npos) << log;
  EXPECT_NE(log.find("cancelled: the server is shutting down"), std::string::npos) << log;
  EXPECT_NE(log.find("shut down\n"), std::string::npos) << log;
}

TEST_F(ServerBinaryTest, LogsAddressModelsAndDatasetsAtStartUp) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  // The models and datasets lines follow the address line: a slow start (the
  // sanitizer build) may not have written them yet when the port is known.
  std::string log = server->Log();
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30);
       log.find("small (loaded on first use)") == std::string::npos && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(20));
    log = server->Log();
  }
  EXPECT_NE(log.find("listening on 127.0.0.1:0"), std::string::npos) << log;
  EXPECT_NE(log.find(": none"), std::string::npos) << log;  // no models yet
  EXPECT_NE(log.find("small (loaded on first use)"), std::string::npos) << log;
}

TEST_F(ServerBinaryTest, LogsEachSkippedDatasetFolderWithItsReasonAtStartUp) {
  WriteDataset(dir_.Join("data"), "Fashion", BundledMnist().train.Prefix(10), BundledMnist().test.Prefix(10));
  WriteDataset(dir_.Join("data"), "emnist", BundledMnist().train.Prefix(10), BundledMnist().test.Prefix(10));
  std::filesystem::remove(dir_.Join("data/emnist/t10k-images-idx3-ubyte"));
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->WaitForPort(absl::Seconds(30)).ok());
  const std::string emnist = "datasets: skipping folder emnist in " + dir_.Join("data") +
                             ": missing t10k-images-idx3-ubyte[.gz]";
  std::string log = server->Log();
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30);
       log.find(emnist) == std::string::npos && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(20));
    log = server->Log();
  }
  EXPECT_NE(log.find(emnist), std::string::npos) << log;
  EXPECT_NE(log.find("datasets: skipping folder Fashion in " + dir_.Join("data") + ": bad name: "), std::string::npos)
      << log;
  EXPECT_NE(log.find("small (loaded on first use)"), std::string::npos) << log;
}

TEST_F(ServerBinaryTest, SigtermCancelsTheRunningJobAndExitsZero) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  StopWithSignalWhileTraining(*server, *port, SIGTERM);
}

TEST_F(ServerBinaryTest, SigintCancelsTheRunningJobAndExitsZero) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  StopWithSignalWhileTraining(*server, *port, SIGINT);
}

TEST_F(ServerBinaryTest, ARestartedBinaryServesWhatThePreviousOneTrained) {
  {
    std::unique_ptr<ServerProcess> first = Start(Flags(), "first.log");
    ASSERT_NE(first, nullptr);
    const absl::StatusOr<int> port = first->WaitForPort(absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << port.status();
    auto stub = v1::ConvNet::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    ASSERT_EQ(TrainToCompletion(*stub, FreshTrainRequest("digits", 1, "small", 1, 10)), 1);
    ASSERT_TRUE(first->Signal(SIGTERM).ok());
    ASSERT_TRUE(first->WaitForExit(absl::Seconds(20)).ok());
  }
  std::unique_ptr<ServerProcess> second = Start(Flags(), "second.log");
  ASSERT_NE(second, nullptr);
  const absl::StatusOr<int> port = second->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_NE(second->Log().find("digits (1 versions, latest 1)"), std::string::npos) << second->Log();
  auto stub = v1::ConvNet::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  v1::PredictRequest request;
  request.set_model_name("digits");
  *request.add_images() = PixelImage(BundledMnist().test.image(0));
  v1::PredictResponse response;
  ASSERT_TRUE(stub->Predict(Context().get(), request, &response).ok());
  EXPECT_EQ(response.version(), 1);
  ASSERT_TRUE(second->Signal(SIGTERM).ok());
  const absl::StatusOr<int> status = second->WaitForExit(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(ServerBinaryTest, AnOutOfRangeFlagStopsTheServerWithExitStatusTwo) {
  std::vector<std::string> flags = Flags();
  flags.push_back("--max_batch=0");
  std::unique_ptr<ServerProcess> server = Start(flags, "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> status = server->WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << server->Log();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_NE(server->Log().find("--max_batch must be >= 1, got 0"), std::string::npos) << server->Log();
}

}  // namespace
}  // namespace convnet::server_testing
