#include "load_test_support.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "standard_services_client.h"
#include "test_support.h"

namespace convnet::load_testing {
namespace {

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

}  // namespace

absl::StatusOr<RunningServer> StartServer(const std::vector<std::string>& flags, const std::string& log_path,
                                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<std::string> all_flags = {"--address=127.0.0.1:0"};
  all_flags.insert(all_flags.end(), flags.begin(), flags.end());
  RunningServer server;
  absl::StatusOr<std::unique_ptr<convnet::testing::ServerProcess>> process =
      convnet::testing::ServerProcess::Start(CONVNET_SERVER_BINARY, all_flags, log_path);
  if (!process.ok()) return process.status();
  server.process = *std::move(process);
  absl::StatusOr<int> port = server.process->WaitForPort(deadline - absl::Now());
  if (!port.ok()) return port.status();
  server.port = *port;
  server.target = absl::StrCat("127.0.0.1:", server.port);
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  server.channel = grpc::CreateCustomChannel(server.target, grpc::InsecureChannelCredentials(), arguments);
  server.stub = v1::ConvNet::NewStub(server.channel);
  grpc::Status last;
  while (absl::Now() < deadline) {
    server_testing::wire::HealthCheckResponse health;
    last = server_testing::HealthCheck(server.channel, "convnet.v1.ConvNet", &health);
    if (last.ok() && health.status() == server_testing::wire::HealthCheckResponse::SERVING) return server;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("convnet_server on ", server.target,
                                                  " did not report SERVING within ", absl::FormatDuration(timeout),
                                                  " (last health check: ", last.error_message(), "); its log:\n",
                                                  server.process->LogTail(20)));
}

v1::TrainRequest InlineTrainRequest(const std::string& model, int k, const Dataset& train, size_t first,
                                    size_t count, int epochs, int batch_size, const std::string& eval_dataset) {
  v1::TrainRequest request;
  request.set_model_name(model);
  request.set_feature_maps(k);
  for (size_t i = first; i < first + count; ++i) {
    v1::Example* example = request.mutable_train_examples()->add_examples();
    absl::Span<const uint8_t> pixels = train.image(i);
    example->mutable_image()->set_pixels(pixels.data(), pixels.size());
    example->set_label(train.labels[i]);
  }
  if (!eval_dataset.empty()) request.set_eval_dataset(eval_dataset);
  *request.mutable_hyperparameters() = server_testing::TestHyperparameters(epochs, batch_size);
  return request;
}

absl::StatusOr<std::string> SubmitJob(v1::ConvNet::Stub& stub, const v1::TrainRequest& request) {
  v1::TrainResponse response;
  const grpc::Status status = stub.Train(server_testing::Context(absl::Seconds(60)).get(), request, &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("Train(", request.model_name(), ")"));
  return response.job_id();
}

absl::StatusOr<v1::TrainingJob> GetJob(v1::ConvNet::Stub& stub, const std::string& job_id) {
  v1::GetTrainingJobRequest request;
  request.set_job_id(job_id);
  v1::TrainingJob job;
  const grpc::Status status = stub.GetTrainingJob(server_testing::Context(absl::Seconds(30)).get(), request, &job);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("GetTrainingJob(", job_id, ")"));
  return job;
}

absl::StatusOr<v1::TrainingJob> WaitForFinalState(v1::ConvNet::Stub& stub, const std::string& job_id,
                                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<v1::TrainingJob> job = GetJob(stub, job_id);
    if (!job.ok() || server_testing::IsFinal(job->state())) return job;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("job ", job_id, " still ", v1::JobState_Name(job->state()),
                                                      " after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<int64_t> TrainVersion(v1::ConvNet::Stub& stub, const v1::TrainRequest& request,
                                     absl::Duration timeout) {
  absl::StatusOr<std::string> id = SubmitJob(stub, request);
  if (!id.ok()) return id.status();
  absl::StatusOr<v1::TrainingJob> job = WaitForFinalState(stub, *id, timeout);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::InternalError(absl::StrCat("job ", *id, " ended ", v1::JobState_Name(job->state()), ": ",
                                            job->error()));
  }
  return job->version();
}

absl::StatusOr<v1::ListModelsResponse> ListModels(v1::ConvNet::Stub& stub) {
  v1::ListModelsResponse response;
  const grpc::Status status =
      stub.ListModels(server_testing::Context(absl::Seconds(30)).get(), v1::ListModelsRequest(), &response);
  if (!status.ok()) return FromGrpc(status, "ListModels");
  return response;
}

WatchResult WatchJob(v1::ConvNet::Stub& stub, const std::string& job_id, absl::Duration timeout) {
  const absl::Time start = absl::Now();
  WatchResult result;
  auto context = server_testing::Context(timeout);
  v1::WatchTrainingJobRequest request;
  request.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::WatchTrainingJobResponse>> reader =
      stub.WatchTrainingJob(context.get(), request);
  v1::WatchTrainingJobResponse message;
  while (reader->Read(&message)) result.messages.push_back(message);
  result.status = reader->Finish();
  result.duration = absl::Now() - start;
  return result;
}

Watchdog::Watchdog(absl::Duration limit, std::string what, std::function<void()> on_expiry)
    : thread_([this, limit, what = std::move(what), on_expiry = std::move(on_expiry)] {
        if (disarmed_.WaitForNotificationWithTimeout(limit)) return;
        std::fprintf(stderr, "WATCHDOG: %s did not finish within %s; failing\n", what.c_str(),
                     absl::FormatDuration(limit).c_str());
        std::fflush(stderr);
        if (on_expiry) on_expiry();
        std::_Exit(1);
      }) {}

Watchdog::~Watchdog() {
  disarmed_.Notify();
  thread_.join();
}

std::string Mebibytes(int64_t bytes) { return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / 1048576.0); }

}  // namespace convnet::load_testing
