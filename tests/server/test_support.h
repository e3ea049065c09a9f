// Shared helpers of the server integration tests: temporary directories, small
// IDX datasets written to disk, the real server started in-process on an
// ephemeral port with a gRPC stub connected to it, and request builders.
#ifndef CONVNET_TESTS_SERVER_TEST_SUPPORT_H_
#define CONVNET_TESTS_SERVER_TEST_SUPPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "core/dataset.h"
#include "core/parameters.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "server/server.h"

namespace convnet::server_testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents
// when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The bundled MNIST (data/mnist), loaded once per test binary.
const MnistDirectory& BundledMnist();

// Writes <data_dir>/<name>/ holding the four IDX files of `train` and `test`
// (uncompressed), i.e. a dataset the server finds as `name`.
void WriteDataset(const std::string& data_dir, const std::string& name, const Dataset& train,
                  const Dataset& test);

// The real server, in-process, on 127.0.0.1 with an ephemeral port, and a
// client stub on a real channel to it.
class TestServer {
 public:
  // Starts with `options` (its address is replaced by 127.0.0.1:0). Fails the
  // current test (and returns null) when the server does not start.
  static std::unique_ptr<TestServer> Start(server::ServerOptions options);

  v1::ConvNet::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  server::ConvNetServer& server() { return *server_; }
  int port() const { return server_->port(); }
  void Shutdown(absl::Duration grace) { server_->Shutdown(grace); }

 private:
  std::unique_ptr<server::ConvNetServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ConvNet::Stub> stub_;
};

// A client context with a deadline (every test call has one, so that a hung
// server fails the test instead of hanging it).
std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(60));

// Image builders.
v1::Image PixelImage(absl::Span<const uint8_t> pixels);
v1::Image FloatImage(absl::Span<const float> values);
// Example i of `data` as pixels.
void AddExample(const Dataset& data, size_t i, google::protobuf::RepeatedPtrField<v1::Example>* examples);
// The first n examples of `data`.
void AddExamples(const Dataset& data, size_t n, google::protobuf::RepeatedPtrField<v1::Example>* examples);

// The hyperparameters of every test's training unless it tests them: the
// given epochs and mini-batch size, cross-entropy, eta 0.5, seed 7.
v1::Hyperparameters TestHyperparameters(int epochs, int batch_size);

// A Train request for a fresh network of K maps on the server dataset
// `dataset` (training split), with TestHyperparameters(epochs, batch_size).
v1::TrainRequest FreshTrainRequest(const std::string& model, int k, const std::string& dataset, int epochs,
                                   int batch_size);

// True for the states a job never leaves: SUCCEEDED, FAILED and CANCELLED.
bool IsFinal(v1::JobState state);

// Submits `request` and fails the test unless it is accepted; returns the job id.
std::string SubmitJob(v1::ConvNet::Stub& stub, const v1::TrainRequest& request);

// Polls GetTrainingJob until the job is in a final state (fails the test
// after `timeout`); returns the job.
v1::TrainingJob WaitForJob(v1::ConvNet::Stub& stub, const std::string& job_id,
                           absl::Duration timeout = absl::Seconds(120));

// Submits and waits; fails the test unless the job SUCCEEDED. Returns the version.
int64_t TrainToCompletion(v1::ConvNet::Stub& stub, const v1::TrainRequest& request);

// The parameters of a served version, exported through GetModel.
Parameters ExportParameters(v1::ConvNet::Stub& stub, const std::string& model, int64_t version);

}  // namespace convnet::server_testing

#endif  // CONVNET_TESTS_SERVER_TEST_SUPPORT_H_
