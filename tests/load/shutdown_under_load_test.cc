// Graceful shutdown under load (issue 6): convnet_server with
// --shutdown_grace=5s takes SIGTERM while 64 clients call Predict and
// GetGradients, one training job runs and one client watches it. Passes when:
//   - every call in flight at the signal ends OK or UNAVAILABLE
//     (docs/SERVICE.md, "Shutdown"); a call started after it ends OK,
//     UNAVAILABLE or CANCELLED (gRPC 1.51 cancels calls its transport holds
//     but no handler has taken when its shutdown begins, grpc/grpc#41785);
//     every call returns before its deadline; OK answers still equal what
//     their version computes;
//   - the watcher's stream ends OK with the final snapshot of the job,
//     CANCELLED "cancelled: the server is shutting down" (the proto's promise
//     within the grace period);
//   - the server exits with status 0 within the grace period + 5 s;
//   - a server restarted on the same model directory lists the same versions.
// A watchdog fails the program (and kills the server) after 90 s.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "call_log.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "load_generator.h"
#include "load_test_support.h"
#include "reference_models.h"
#include "test_support.h"

namespace convnet::load_testing {
namespace {

constexpr char kModel[] = "digits";
constexpr absl::Duration kGrace = absl::Seconds(5);
constexpr absl::Duration kExitMargin = absl::Seconds(5);
constexpr absl::Duration kCallTimeout = absl::Seconds(20);

TEST(LoadShutdownTest, SigtermUnderLoadEndsEveryCallOkOrUnavailableAndExitsWithinTheGrace) {
  std::atomic<pid_t> server_pid{0};
  Watchdog watchdog(absl::Seconds(90), "LoadShutdownTest", [&] {
    if (server_pid.load() > 0) kill(server_pid.load(), SIGKILL);
  });
  server_testing::TempDir dir;
  const MnistDirectory& mnist = server_testing::BundledMnist();
  const std::vector<std::string> flags = {"--model_dir=" + dir.Join("models"),
                                          absl::StrCat("--data_dir=", CONVNET_DATA_DIR),
                                          absl::StrCat("--shutdown_grace=", absl::FormatDuration(kGrace))};
  absl::StatusOr<RunningServer> server = StartServer(flags, dir.Join("server.log"));
  ASSERT_TRUE(server.ok()) << server.status();
  server_pid = server->process->pid();
  v1::ConvNet::Stub& stub = *server->stub;

  // Two versions (K = 1 and K = 2) to serve and to find again after the restart.
  for (int k = 1; k <= 2; ++k) {
    absl::StatusOr<int64_t> version =
        TrainVersion(stub, InlineTrainRequest(kModel, k, mnist.train, 0, 500, 1, 10, ""), absl::Seconds(60));
    ASSERT_TRUE(version.ok()) << version.status() << "\n" << server->process->LogTail(20);
    ASSERT_EQ(*version, k);
  }
  absl::StatusOr<v1::ListModelsResponse> before = ListModels(stub);
  ASSERT_TRUE(before.ok()) << before.status();

  ReferenceModels reference(server->channel, kModel, mnist.test);
  for (int64_t version : {1, 2}) ASSERT_TRUE(reference.Get(version).ok());
  CallLog log;
  LoadOptions options;
  options.target = server->target;
  options.model_name = kModel;
  options.call_timeout = kCallTimeout;
  options.initial_versions = {1, 2};
  // Judged below per call, by when it started (CANCELLED only after SIGTERM).
  options.allowed_codes = {grpc::StatusCode::OK, grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::CANCELLED};
  LoadGenerator load(options, reference, log);
  const absl::Time load_start = absl::Now();
  load.Start();

  // A job that would train for many minutes (K = 2, 100 epochs of the
  // bundled MNIST), and its watcher.
  v1::TrainRequest long_job = InlineTrainRequest(kModel, 2, mnist.train, 0, 0, 100, 10, "");
  long_job.set_train_dataset("mnist");
  absl::StatusOr<std::string> job_id = SubmitJob(stub, long_job);
  ASSERT_TRUE(job_id.ok()) << job_id.status();
  WatchResult watched;
  // A jthread: joined also when an ASSERT below returns early.
  std::jthread watcher([&] { watched = WatchJob(stub, *job_id, kCallTimeout); });
  const absl::Time running_deadline = absl::Now() + absl::Seconds(30);
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  while (state != v1::JOB_STATE_RUNNING && absl::Now() < running_deadline) {
    absl::StatusOr<v1::TrainingJob> job = GetJob(stub, *job_id);
    ASSERT_TRUE(job.ok()) << job.status();
    state = job->state();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(state, v1::JOB_STATE_RUNNING);
  absl::SleepFor(absl::Seconds(3));  // the load at full speed

  const absl::Time signalled = absl::Now();
  ASSERT_TRUE(server->process->Signal(SIGTERM).ok());
  absl::StatusOr<int> exit_status = server->process->WaitForExit(kGrace + kExitMargin);
  const absl::Duration exit_after = absl::Now() - signalled;
  // Let the clients meet the closed port for a moment, then stop them.
  absl::SleepFor(absl::Seconds(1));
  const absl::Time stopping = absl::Now();
  load.Stop();
  const absl::Time load_end = absl::Now();
  const absl::Duration stop_took = load_end - stopping;
  watcher.join();

  // --- Summary ---------------------------------------------------------------
  std::map<std::string, std::map<grpc::StatusCode, int>> in_flight, after;
  int in_flight_total = 0;
  absl::Duration longest_after = absl::ZeroDuration();
  std::vector<std::string> wrong_codes;
  for (const CallRecord& record : log.records()) {
    const bool started_after = record.start >= signalled;
    if (record.start < signalled && record.end >= signalled) {
      ++in_flight[record.method][record.code];
      ++in_flight_total;
    } else if (started_after) {
      ++after[record.method][record.code];
      longest_after = std::max(longest_after, record.end - record.start);
    }
    // OK and UNAVAILABLE always. CANCELLED only for a call started after the
    // signal: gRPC 1.51 cancels the calls its transport has received but no
    // handler has taken yet when the server's gRPC shutdown begins
    // (grpc/grpc#41785); the service never saw them. A call in flight at the
    // signal must end OK or UNAVAILABLE.
    const bool allowed = record.code == grpc::StatusCode::OK || record.code == grpc::StatusCode::UNAVAILABLE ||
                         (record.code == grpc::StatusCode::CANCELLED && started_after);
    if (!allowed && wrong_codes.size() < 20) {
      wrong_codes.push_back(absl::StrCat(record.method, " started ",
                                         absl::FormatDuration(record.start - signalled), " after SIGTERM ended ",
                                         CodeName(record.code)));
    }
  }
  auto print_counts = [](const char* title, const std::map<std::string, std::map<grpc::StatusCode, int>>& counts) {
    std::printf("%s:", title);
    for (const auto& [method, codes] : counts) {
      for (const auto& [code, count] : codes) std::printf(" %s %s=%d", method.c_str(), CodeName(code).c_str(), count);
    }
    std::printf("\n");
  };
  std::printf("\n=== shutdown under load: %d clients, --shutdown_grace=%s ===\n", options.clients,
              absl::FormatDuration(kGrace).c_str());
  std::printf("%s", log.Report(load_start, load_end).c_str());
  print_counts("calls in flight at SIGTERM", in_flight);
  print_counts("calls started after SIGTERM", after);
  std::printf("longest call started after SIGTERM: %s; clients stopped in %s\n",
              absl::FormatDuration(longest_after).c_str(), absl::FormatDuration(stop_took).c_str());
  std::printf("server exit: %s after SIGTERM (limit %s)\n", absl::FormatDuration(exit_after).c_str(),
              absl::FormatDuration(kGrace + kExitMargin).c_str());
  std::printf("watcher: %zu messages, stream %s in %s\n", watched.messages.size(),
              CodeName(watched.status.error_code()).c_str(), absl::FormatDuration(watched.duration).c_str());
  std::fflush(stdout);

  // --- Checks ----------------------------------------------------------------
  EXPECT_EQ(log.problem_count(), 0) << "calls that ended neither OK, UNAVAILABLE nor CANCELLED, or wrong answers:\n"
                                    << log.Report(load_start, load_end);
  EXPECT_TRUE(wrong_codes.empty()) << "calls in flight at SIGTERM must end OK or UNAVAILABLE:\n  "
                                   << absl::StrJoin(wrong_codes, "\n  ");
  EXPECT_GT(in_flight_total, 0) << "no call was in flight at SIGTERM: the test did not test shutdown under load";
  EXPECT_LT(stop_took, kCallTimeout) << "a client call hung";
  ASSERT_TRUE(exit_status.ok()) << exit_status.status() << "\n" << server->process->LogTail(30);
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << "wait status " << *exit_status << "\n" << server->process->LogTail(30);
  EXPECT_NE(server->process->Log().find("shut down\n"), std::string::npos) << server->process->LogTail(30);

  EXPECT_TRUE(watched.status.ok()) << "WatchTrainingJob: " << CodeName(watched.status.error_code()) << ": "
                                   << watched.status.error_message();
  ASSERT_FALSE(watched.messages.empty());
  const v1::WatchTrainingJobResponse& last = watched.messages.back();
  ASSERT_TRUE(last.has_job()) << last.DebugString();
  EXPECT_EQ(last.job().state(), v1::JOB_STATE_CANCELLED) << last.DebugString();
  EXPECT_NE(last.job().error().find("the server is shutting down"), std::string::npos) << last.job().error();

  // A restart on the same model directory lists the same versions: the
  // cancelled job published nothing and nothing served was lost.
  absl::StatusOr<RunningServer> restarted = StartServer(flags, dir.Join("restarted.log"));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  server_pid = restarted->process->pid();
  absl::StatusOr<v1::ListModelsResponse> after_restart = ListModels(*restarted->stub);
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*before, *after_restart))
      << "before:\n" << before->DebugString() << "after the restart:\n" << after_restart->DebugString();
  ASSERT_TRUE(restarted->process->Signal(SIGTERM).ok());
  absl::StatusOr<int> restarted_exit = restarted->process->WaitForExit(kGrace + kExitMargin);
  ASSERT_TRUE(restarted_exit.ok()) << restarted_exit.status();
  EXPECT_TRUE(WIFEXITED(*restarted_exit) && WEXITSTATUS(*restarted_exit) == 0);
}

}  // namespace
}  // namespace convnet::load_testing
