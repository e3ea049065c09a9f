#include "test_support.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/idx.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "server/log.h"

namespace convnet::server_testing {

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/convnet_server_test.XXXXXX");
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
    std::abort();
  }
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

const MnistDirectory& BundledMnist() {
  static const MnistDirectory* mnist = [] {
    auto loaded = LoadMnistDirectory(std::string(CONVNET_DATA_DIR) + "/mnist");
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      std::abort();
    }
    return new MnistDirectory(*std::move(loaded));
  }();
  return *mnist;
}

namespace {

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

}  // namespace

void WriteDataset(const std::string& data_dir, const std::string& name, const Dataset& train,
                  const Dataset& test) {
  const std::string dir = data_dir + "/" + name;
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/" + kTrainImagesFile, EncodeIdxImages(train.images));
  WriteFile(dir + "/" + kTrainLabelsFile, EncodeIdxLabels(train.labels));
  WriteFile(dir + "/" + kTestImagesFile, EncodeIdxImages(test.images));
  WriteFile(dir + "/" + kTestLabelsFile, EncodeIdxLabels(test.labels));
}

std::unique_ptr<TestServer> TestServer::Start(server::ServerOptions options) {
  if (std::getenv("CONVNET_TEST_SERVER_LOGS") == nullptr) server::SetInfoLoggingEnabled(false);
  options.address = "127.0.0.1:0";
  auto started = server::ConvNetServer::Start(options);
  if (!started.ok()) {
    ADD_FAILURE() << "the server did not start: " << started.status();
    return nullptr;
  }
  auto test_server = std::unique_ptr<TestServer>(new TestServer());
  test_server->server_ = *std::move(started);
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);  // the client accepts anything: the server's limits are under test
  arguments.SetMaxSendMessageSize(-1);
  test_server->channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", test_server->server_->port()),
                                                    grpc::InsecureChannelCredentials(), arguments);
  test_server->stub_ = v1::ConvNet::NewStub(test_server->channel_);
  return test_server;
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

v1::Image PixelImage(absl::Span<const uint8_t> pixels) {
  v1::Image image;
  image.set_pixels(pixels.data(), pixels.size());
  return image;
}

v1::Image FloatImage(absl::Span<const float> values) {
  v1::Image image;
  image.mutable_values()->mutable_values()->Assign(values.begin(), values.end());
  return image;
}

void AddExample(const Dataset& data, size_t i, google::protobuf::RepeatedPtrField<v1::Example>* examples) {
  v1::Example* example = examples->Add();
  *example->mutable_image() = PixelImage(data.image(i));
  example->set_label(data.labels[i]);
}

void AddExamples(const Dataset& data, size_t n, google::protobuf::RepeatedPtrField<v1::Example>* examples) {
  for (size_t i = 0; i < n; ++i) AddExample(data, i, examples);
}

v1::Hyperparameters TestHyperparameters(int epochs, int batch_size) {
  v1::Hyperparameters h;
  h.set_epochs(epochs);
  h.set_batch_size(batch_size);
  h.set_learning_rate(0.5);
  h.set_cost(v1::COST_CROSS_ENTROPY);
  h.set_seed(7);
  return h;
}

v1::TrainRequest FreshTrainRequest(const std::string& model, int k, const std::string& dataset, int epochs,
                                   int batch_size) {
  v1::TrainRequest request;
  request.set_model_name(model);
  request.set_feature_maps(k);
  request.set_train_dataset(dataset);
  *request.mutable_hyperparameters() = TestHyperparameters(epochs, batch_size);
  return request;
}

bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

std::string SubmitJob(v1::ConvNet::Stub& stub, const v1::TrainRequest& request) {
  v1::TrainResponse response;
  const grpc::Status status = stub.Train(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  return response.job_id();
}

v1::TrainingJob WaitForJob(v1::ConvNet::Stub& stub, const std::string& job_id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::TrainingJob job;
  while (absl::Now() < deadline) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(job_id);
    const grpc::Status status = stub.GetTrainingJob(Context().get(), request, &job);
    if (!status.ok()) {
      ADD_FAILURE() << "GetTrainingJob(" << job_id << "): " << status.error_message();
      return job;
    }
    if (IsFinal(job.state())) return job;
    absl::SleepFor(absl::Milliseconds(5));
  }
  ADD_FAILURE() << "job " << job_id << " did not finish within " << timeout << "; last state "
                << v1::JobState_Name(job.state());
  return job;
}

int64_t TrainToCompletion(v1::ConvNet::Stub& stub, const v1::TrainRequest& request) {
  const std::string id = SubmitJob(stub, request);
  if (id.empty()) return 0;
  const v1::TrainingJob job = WaitForJob(stub, id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  return job.version();
}

Parameters ExportParameters(v1::ConvNet::Stub& stub, const std::string& model, int64_t version) {
  v1::GetModelRequest request;
  request.set_model_name(model);
  request.set_version(version);
  request.set_include_parameters(true);
  v1::GetModelResponse response;
  const grpc::Status status = stub.GetModel(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  if (!status.ok() || response.model().versions_size() != 1) return *Parameters::Zeros(1);
  const v1::Parameters& p = response.model().versions(0).parameters();
  auto parameters = Parameters::FromFlat(p.feature_maps(), absl::MakeConstSpan(p.values().data(), p.values().size()));
  EXPECT_TRUE(parameters.ok()) << parameters.status();
  return parameters.ok() ? *std::move(parameters) : *Parameters::Zeros(1);
}

}  // namespace convnet::server_testing
