// The convnet_server binary as an operator runs it: flags, the start-up log,
// and SIGTERM / SIGINT with a training job running (the job ends CANCELLED,
// the process exits 0).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "standard_services_client.h"
#include "test_support.h"

extern char** environ;

namespace convnet::server_testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A convnet_server child process with its stderr in a file.
class ServerProcess {
 public:
  ServerProcess(const std::vector<std::string>& flags, const std::string& log_path) : log_path_(log_path) {
    std::vector<std::string> args = {CONVNET_SERVER_BINARY};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << argv[0] << ": " << rc;
      pid_ = -1;
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }

  // Waits for the "listening on" line and returns the bound port (0 on failure).
  int WaitForPort(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      const std::string log = ReadFile(log_path_);
      const size_t at = log.find("(port ");
      if (at != std::string::npos) {
        const size_t end = log.find(')', at);
        int port = 0;
        if (end != std::string::npos && absl::SimpleAtoi(log.substr(at + 6, end - at - 6), &port)) return port;
      }
      if (HasExited(absl::ZeroDuration())) return 0;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return 0;
  }

  // True (with the exit status in `status`) when the process exited within `timeout`.
  bool HasExited(absl::Duration timeout, int* status = nullptr) {
    const absl::Time deadline = absl::Now() + timeout;
    do {
      int s = 0;
      if (exited_ || waitpid(pid_, &s, WNOHANG) == pid_) {
        if (!exited_) status_ = s;
        exited_ = true;
        if (status != nullptr) *status = status_;
        return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    } while (absl::Now() < deadline);
    return false;
  }

  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteDataset(dir_.Join("data"), "small", BundledMnist().train.Prefix(1000), BundledMnist().test.Prefix(100));
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
  ASSERT_EQ(kill(server.pid(), signal_number), 0);
  int status = 0;
  ASSERT_TRUE(server.HasExited(absl::Seconds(20), &status)) << "the server did not exit";
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(3)) << "shutdown waited for an idle connection";
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string log = server.Log();
  EXPECT_NE(log.find(absl::StrCat("job ", id, " (model \"digits\"): RUNNING -> CANCELLED")), std::string::npos) << log;
  EXPECT_NE(log.find("cancelled: the server is shutting down"), std::string::npos) << log;
  EXPECT_NE(log.find("shut down\n"), std::string::npos) << log;
}

TEST_F(ServerBinaryTest, LogsAddressModelsAndDatasetsAtStartUp) {
  ServerProcess server(Flags(), dir_.Join("server.log"));
  ASSERT_GT(server.WaitForPort(absl::Seconds(30)), 0) << server.Log();
  const std::string log = server.Log();
  EXPECT_NE(log.find("listening on 127.0.0.1:0"), std::string::npos) << log;
  EXPECT_NE(log.find(": none"), std::string::npos) << log;  // no models yet
  EXPECT_NE(log.find("small (loaded on first use)"), std::string::npos) << log;
}

TEST_F(ServerBinaryTest, SigtermCancelsTheRunningJobAndExitsZero) {
  ServerProcess server(Flags(), dir_.Join("server.log"));
  const int port = server.WaitForPort(absl::Seconds(30));
  ASSERT_GT(port, 0) << server.Log();
  StopWithSignalWhileTraining(server, port, SIGTERM);
}

TEST_F(ServerBinaryTest, SigintCancelsTheRunningJobAndExitsZero) {
  ServerProcess server(Flags(), dir_.Join("server.log"));
  const int port = server.WaitForPort(absl::Seconds(30));
  ASSERT_GT(port, 0) << server.Log();
  StopWithSignalWhileTraining(server, port, SIGINT);
}

TEST_F(ServerBinaryTest, ARestartedBinaryServesWhatThePreviousOneTrained) {
  {
    ServerProcess first(Flags(), dir_.Join("first.log"));
    const int port = first.WaitForPort(absl::Seconds(30));
    ASSERT_GT(port, 0) << first.Log();
    auto stub = v1::ConvNet::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    ASSERT_EQ(TrainToCompletion(*stub, FreshTrainRequest("digits", 1, "small", 1, 10)), 1);
    ASSERT_EQ(kill(first.pid(), SIGTERM), 0);
    ASSERT_TRUE(first.HasExited(absl::Seconds(20)));
  }
  ServerProcess second(Flags(), dir_.Join("second.log"));
  const int port = second.WaitForPort(absl::Seconds(30));
  ASSERT_GT(port, 0) << second.Log();
  EXPECT_NE(second.Log().find("digits (1 versions, latest 1)"), std::string::npos) << second.Log();
  auto stub = v1::ConvNet::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  v1::PredictRequest request;
  request.set_model_name("digits");
  *request.add_images() = PixelImage(BundledMnist().test.image(0));
  v1::PredictResponse response;
  ASSERT_TRUE(stub->Predict(Context().get(), request, &response).ok());
  EXPECT_EQ(response.version(), 1);
  ASSERT_EQ(kill(second.pid(), SIGTERM), 0);
  int status = 0;
  ASSERT_TRUE(second.HasExited(absl::Seconds(20), &status));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(ServerBinaryTest, AnOutOfRangeFlagStopsTheServerWithExitStatusTwo) {
  std::vector<std::string> flags = Flags();
  flags.push_back("--max_batch=0");
  ServerProcess server(flags, dir_.Join("server.log"));
  int status = 0;
  ASSERT_TRUE(server.HasExited(absl::Seconds(30), &status)) << server.Log();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(server.Log().find("--max_batch must be >= 1, got 0"), std::string::npos) << server.Log();
}

}  // namespace
}  // namespace convnet::server_testing
