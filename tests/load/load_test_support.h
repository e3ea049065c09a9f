// Shared steps of the load tests: start convnet_server in a child process and
// wait until it serves, build Train requests on inline bundled-MNIST
// examples, follow jobs (polling and WatchTrainingJob), and a watchdog that
// bounds a whole test in time.
#ifndef CONVNET_TESTS_LOAD_LOAD_TEST_SUPPORT_H_
#define CONVNET_TESTS_LOAD_LOAD_TEST_SUPPORT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "core/dataset.h"
#include "grpcpp/channel.h"
#include "tests/support/server_process.h"

namespace convnet::load_testing {

// A started server and a channel and stub connected to it.
struct RunningServer {
  std::unique_ptr<convnet::testing::ServerProcess> process;
  int port = 0;
  std::string target;  // "127.0.0.1:<port>"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ConvNet::Stub> stub;
};

// Starts CONVNET_SERVER_BINARY on 127.0.0.1:0 with `flags` (the address is
// added here), its log in `log_path`, and waits (up to `timeout`) until the
// standard health service answers SERVING for convnet.v1.ConvNet.
absl::StatusOr<RunningServer> StartServer(const std::vector<std::string>& flags, const std::string& log_path,
                                          absl::Duration timeout = absl::Seconds(30));

// A Train request for a fresh network of K maps on the examples
// [first, first + count) of `train` sent inline, with
// server_testing::TestHyperparameters(epochs, batch_size); evaluated on `eval_dataset` (a server dataset's test split) unless
// it is empty.
v1::TrainRequest InlineTrainRequest(const std::string& model, int k, const Dataset& train, size_t first,
                                    size_t count, int epochs, int batch_size, const std::string& eval_dataset);

// Submits `request`; the job id, or the call's status as an absl::Status.
absl::StatusOr<std::string> SubmitJob(v1::ConvNet::Stub& stub, const v1::TrainRequest& request);

// GetTrainingJob once.
absl::StatusOr<v1::TrainingJob> GetJob(v1::ConvNet::Stub& stub, const std::string& job_id);

// Polls until the job reaches a final state; DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<v1::TrainingJob> WaitForFinalState(v1::ConvNet::Stub& stub, const std::string& job_id,
                                                  absl::Duration timeout);

// Submits and waits for SUCCEEDED; the version it published. INTERNAL (with
// the job's state and error) when it ended otherwise.
absl::StatusOr<int64_t> TrainVersion(v1::ConvNet::Stub& stub, const v1::TrainRequest& request,
                                     absl::Duration timeout);

// ListModels once.
absl::StatusOr<v1::ListModelsResponse> ListModels(v1::ConvNet::Stub& stub);

// The whole WatchTrainingJob stream of one job and how it ended.
struct WatchResult {
  grpc::Status status;
  std::vector<v1::WatchTrainingJobResponse> messages;
  absl::Duration duration;
};
// Watches `job_id` on `stub` with a deadline of `timeout` until the stream ends.
WatchResult WatchJob(v1::ConvNet::Stub& stub, const std::string& job_id, absl::Duration timeout);

// Fails a whole test program that runs past its time limit: prints `what`,
// runs `on_expiry` (e.g. SIGKILL the server child) and exits with status 1.
// Disarmed by destruction.
class Watchdog {
 public:
  Watchdog(absl::Duration limit, std::string what, std::function<void()> on_expiry);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  absl::Notification disarmed_;
  std::thread thread_;
};

// "123.4 MiB".
std::string Mebibytes(int64_t bytes);

}  // namespace convnet::load_testing

#endif  // CONVNET_TESTS_LOAD_LOAD_TEST_SUPPORT_H_
