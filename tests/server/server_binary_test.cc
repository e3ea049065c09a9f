// The convnet_server binary as an operator runs it: flags, the start-up log,
// SIGTERM / SIGINT with a training job running (the job ends CANCELLED, the
// process exits 0), SIGHUP (reload; the job goes on), SIGQUIT and SIGUSR1
// (ignored), and one server per port (a second one exits 1).
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/model_file.h"
#include "core/parameters.h"
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

// Waits (bounded) until the server's log holds `text`; false, with the log's
// tail as a test failure, when it does not within 30 s.
bool WaitForLog(const ServerProcess& server, const std::string& text) {
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30); absl::Now() < give_up;) {
    if (server.Log().find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ADD_FAILURE() << "the log lacks \"" << text << "\":\n" << server.LogTail(20);
  return false;
}

// Starts a training job and waits until it runs; returns its id ("" with a
// test failure when it does not start running).
std::string StartRunningJob(v1::ConvNet::Stub& stub, int epochs) {
  const std::string id = SubmitJob(stub, FreshTrainRequest("digits", 1, "small", epochs, 10));
  v1::TrainingJob job;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       job.state() != v1::JOB_STATE_RUNNING && !IsFinal(job.state()) && absl::Now() < deadline;) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    EXPECT_TRUE(stub.GetTrainingJob(Context().get(), request, &job).ok());
  }
  EXPECT_EQ(job.state(), v1::JOB_STATE_RUNNING);
  return job.state() == v1::JOB_STATE_RUNNING ? id : "";
}

// Sends `signals` while a training job runs; the job completes SUCCEEDED
// after them (its last state change is logged after each signal's line), the
// server keeps serving, and SIGTERM still stops it with exit status 0.
void TrainingSurvivesSignals(ServerProcess& server, int port, const std::vector<int>& signals,
                             const std::vector<std::string>& logged) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = v1::ConvNet::NewStub(channel);
  // Long enough to be running when the signals arrive, short enough to finish.
  const std::string id = StartRunningJob(*stub, 50);
  ASSERT_FALSE(id.empty());
  for (const int signal_number : signals) ASSERT_TRUE(server.Signal(signal_number).ok());
  for (const std::string& line : logged) ASSERT_TRUE(WaitForLog(server, line));

  EXPECT_EQ(WaitForJob(*stub, id).state(), v1::JOB_STATE_SUCCEEDED);
  const std::string log = server.Log();
  const size_t succeeded = log.find(absl::StrCat("job ", id, " (model \"digits\"): RUNNING -> SUCCEEDED"));
  ASSERT_NE(succeeded, std::string::npos) << log;
  for (const std::string& line : logged) EXPECT_LT(log.find(line), succeeded) << "not signalled while running";
  wire::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(channel, "convnet.v1.ConvNet", &health).ok());
  EXPECT_EQ(health.status(), wire::HealthCheckResponse::SERVING);

  ASSERT_TRUE(server.Signal(SIGTERM).ok());
  const absl::StatusOr<int> status = server.WaitForExit(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

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

TEST_F(ServerBinaryTest, SighupReloadsWhileAJobRunsAndTheJobSucceeds) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  TrainingSurvivesSignals(*server, *port, {SIGHUP}, {"received SIGHUP: reloading", "reload: datasets in"});
}

TEST_F(ServerBinaryTest, SigquitAndSigusr1AreIgnoredWhileAJobRuns) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  TrainingSurvivesSignals(*server, *port, {SIGQUIT, SIGUSR1},
                          {"received SIGQUIT: ignored", "received SIGUSR1: ignored"});
}

// CancelTrainingJob of an unknown job with `token`: NOT_FOUND once past the
// token check, UNAUTHENTICATED when the token is refused.
grpc::StatusCode CancelWithToken(v1::ConvNet::Stub& stub, const std::string& token) {
  auto context = Context();
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  v1::CancelTrainingJobRequest request;
  request.set_job_id("no-such-job");
  v1::TrainingJob job;
  return stub.CancelTrainingJob(context.get(), request, &job).error_code();
}

TEST_F(ServerBinaryTest, SighupTakesUpARotatedToken) {
  const std::string old_token = "old-token-0123456789abcdef";
  const std::string new_token = "new-token-0123456789abcdef";
  const std::string token_file = dir_.Join("token");
  std::ofstream(token_file) << old_token << "\n";
  std::vector<std::string> flags = Flags();
  flags.push_back("--auth_token_file=" + token_file);
  std::unique_ptr<ServerProcess> server = Start(flags, "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub = v1::ConvNet::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  ASSERT_EQ(CancelWithToken(*stub, old_token), grpc::StatusCode::NOT_FOUND);

  std::ofstream(token_file, std::ios::trunc) << new_token << "\n";
  ASSERT_TRUE(server->Signal(SIGHUP).ok());
  ASSERT_TRUE(WaitForLog(*server, "reload: bearer token replaced"));
  EXPECT_EQ(CancelWithToken(*stub, old_token), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CancelWithToken(*stub, new_token), grpc::StatusCode::NOT_FOUND);

  // An empty file is refused and the token in force stays.
  std::ofstream(token_file, std::ios::trunc) << "\n";
  ASSERT_TRUE(server->Signal(SIGHUP).ok());
  ASSERT_TRUE(WaitForLog(*server, "reload: bearer token not reloaded"));
  EXPECT_EQ(CancelWithToken(*stub, new_token), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerBinaryTest, SighupServesAVersionDirectoryCopiedIntoTheModelDirectory) {
  std::unique_ptr<ServerProcess> server = Start(Flags(), "server.log");
  ASSERT_NE(server, nullptr);
  const absl::StatusOr<int> port = server->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub = v1::ConvNet::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  v1::PredictRequest request;
  request.set_model_name("copied");
  *request.add_images() = PixelImage(BundledMnist().test.image(0));
  v1::PredictResponse response;
  ASSERT_EQ(stub->Predict(Context().get(), request, &response).error_code(), grpc::StatusCode::NOT_FOUND);

  // Copied under a name the server ignores, then renamed into place.
  absl::StatusOr<Parameters> parameters = Parameters::Initialize(1, 7);
  ASSERT_TRUE(parameters.ok()) << parameters.status();
  std::filesystem::create_directories(dir_.Join("models/copied/incoming"));
  ASSERT_TRUE(WriteModelFile(dir_.Join("models/copied/incoming/model.cnvn"), Model{*std::move(parameters), {}}).ok());
  std::filesystem::rename(dir_.Join("models/copied/incoming"), dir_.Join("models/copied/3"));
  ASSERT_TRUE(server->Signal(SIGHUP).ok());
  ASSERT_TRUE(WaitForLog(*server, "loaded copied/3"));
  const grpc::Status status = stub->Predict(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(response.version(), 3);
}

TEST_F(ServerBinaryTest, ASecondServerOnAPortInUseExitsOneAndTheFirstKeepsServing) {
  std::unique_ptr<ServerProcess> first = Start(Flags(), "first.log");
  ASSERT_NE(first, nullptr);
  const absl::StatusOr<int> port = first->WaitForPort(absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status();

  std::vector<std::string> flags = Flags();
  flags[0] = absl::StrCat("--address=127.0.0.1:", *port);
  std::unique_ptr<ServerProcess> second = Start(flags, "second.log");
  ASSERT_NE(second, nullptr);
  const absl::StatusOr<int> status = second->WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << "the second server runs on a port in use:\n" << second->Log();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(second->Log().find("address in use"), std::string::npos) << second->Log();

  wire::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()),
                          "convnet.v1.ConvNet", &health)
                  .ok());
  EXPECT_EQ(health.status(), wire::HealthCheckResponse::SERVING);
}

TEST(OnePortOneServerTest, StartingASecondServerOnAPortInUseIsUnavailable) {
  TempDir dir;
  server::ServerOptions options;
  options.address = "127.0.0.1:0";
  options.model_dir = dir.Join("first");
  options.data_dir = "";
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<server::ConvNetServer>> first = server::ConvNetServer::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();

  options.address = absl::StrCat("127.0.0.1:", (*first)->port());
  options.model_dir = dir.Join("second");
  absl::StatusOr<std::unique_ptr<server::ConvNetServer>> second = server::ConvNetServer::Start(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status();
}

}  // namespace
}  // namespace convnet::server_testing
