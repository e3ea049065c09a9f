// libFuzzer target: request handling of the ConvNet service. The first byte
// picks the RPC, the rest is decoded as its request message (bytes that do not
// parse are dropped, as gRPC would) and handed to the real handler of
// server/convnet_service.h, in-process, which validates it and does the work
// on a small model (fuzz_service.h). The handler may refuse anything, but must
// neither crash nor trip a sanitizer, and never answer INTERNAL or UNKNOWN
// (which would mean an exception or a server-side fault on a client's input).
//
// Most handlers are called directly, with a grpc::ServerContext that belongs
// to no call (no deadline, no metadata). Predict (a callback-API handler,
// which answers through its call's reactor) and WatchTrainingJob (which
// writes to its call's stream) need a live call: they go through a gRPC
// server in this process, without a listening port, over its in-process
// channel, to the same service object. A job_id of kLastJobId in
// WatchTrainingJob or GetTrainingJob stands for the last job submitted.
//
// A Train that is accepted is cancelled at once through CancelTrainingJob, so
// that jobs never pile up behind the fuzzer; the state (repository, jobs)
// lives for the whole process and is deliberately never destroyed, because
// libFuzzer exits while job runner threads may still be winding down.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/dataset.h"
#include "core/idx.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "core/thread_pool.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "fuzz_service.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "server/convnet_service.h"
#include "server/dataset_registry.h"
#include "server/job_manager.h"
#include "server/log.h"
#include "server/model_repository.h"

namespace convnet::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "request_fuzzer setup: %s\n", what.c_str());
  std::abort();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) Fail("cannot write " + path);
}

// n examples with pseudo-random pixels and labels (fixed seed).
Dataset RandomDataset(size_t n, uint32_t seed) {
  Dataset data;
  uint32_t state = seed;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 24;
  };
  for (size_t i = 0; i < n * 784; ++i) data.images.push_back(static_cast<uint8_t>(next()));
  for (size_t i = 0; i < n; ++i) data.labels.push_back(static_cast<uint8_t>(next() % 10));
  return data;
}

struct Fixture {
  std::string dir;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<server::ModelRepository> repository;
  std::unique_ptr<server::DatasetRegistry> datasets;
  std::unique_ptr<server::JobManager> jobs;
  std::unique_ptr<server::ConvNetService> service;
  std::unique_ptr<grpc::Server> server;     // in-process only: no port
  std::unique_ptr<v1::ConvNet::Stub> stub;  // on server's in-process channel
  std::string last_job_id;                  // the last job Train accepted
};

Fixture* MakeFixture() {
  server::SetInfoLoggingEnabled(false);
  auto* f = new Fixture;
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/convnet-request-fuzz-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) Fail("mkdtemp " + pattern);
  f->dir = pattern;

  const std::string data_dir = f->dir + "/data";
  std::filesystem::create_directories(data_dir + "/" + kDatasetName);
  const Dataset train = RandomDataset(kTrainExamples, 1);
  const Dataset test = RandomDataset(kTestExamples, 2);
  WriteFile(data_dir + "/" + kDatasetName + "/" + kTrainImagesFile, EncodeIdxImages(train.images));
  WriteFile(data_dir + "/" + kDatasetName + "/" + kTrainLabelsFile, EncodeIdxLabels(train.labels));
  WriteFile(data_dir + "/" + kDatasetName + "/" + kTestImagesFile, EncodeIdxImages(test.images));
  WriteFile(data_dir + "/" + kDatasetName + "/" + kTestLabelsFile, EncodeIdxLabels(test.labels));

  f->pool = std::make_unique<ThreadPool>(2);
  auto repository = server::ModelRepository::Open(f->dir + "/models");
  if (!repository.ok()) Fail(std::string(repository.status().message()));
  f->repository = *std::move(repository);
  for (int k : {1, 2}) {
    auto parameters = Parameters::Initialize(k, 7);
    if (!parameters.ok()) Fail(std::string(parameters.status().message()));
    Model model{*std::move(parameters), ModelMetadata{}};
    if (auto published = f->repository->Publish(kModelName, std::move(model)); !published.ok()) {
      Fail(std::string(published.status().message()));
    }
  }
  f->datasets = std::make_unique<server::DatasetRegistry>(data_dir);
  f->jobs = std::make_unique<server::JobManager>(server::JobManagerOptions{1, 1}, f->repository.get(),
                                                 f->pool.get());
  f->service = std::make_unique<server::ConvNetService>(
      f->repository.get(), f->datasets.get(), f->jobs.get(), f->pool.get(),
      server::ServiceLimits{kMaxBatch, size_t{1} << 20, kMaxBatch});
  grpc::ServerBuilder builder;
  builder.RegisterService(f->service.get());
  f->server = builder.BuildAndStart();
  if (f->server == nullptr) Fail("cannot start the in-process gRPC server");
  f->stub = v1::ConvNet::NewStub(f->server->InProcessChannel(grpc::ChannelArguments()));
  return f;
}

Fixture& TheFixture() {
  static Fixture* fixture = MakeFixture();
  return *fixture;
}

void Check(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::INTERNAL || status.error_code() == grpc::StatusCode::UNKNOWN) {
    std::fprintf(stderr, "handler answered %d: %s\n", static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    std::abort();
  }
}

// Decodes `bytes` as Request and calls `handler` with it; false when the
// bytes do not parse.
template <typename Request, typename Response, typename Handler>
bool Call(const std::string& bytes, Handler handler, Response* response) {
  Request request;
  if (!request.ParseFromString(bytes)) return false;
  grpc::ServerContext context;
  Check((TheFixture().service.get()->*handler)(&context, &request, response));
  return true;
}

// The client side of a call through the in-process channel; an input never
// takes long (16 images at most), so the deadline only guards against a hang.
std::unique_ptr<grpc::ClientContext> CallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return context;
}

// kLastJobId stands for the last job submitted.
void ResolveJobId(std::string* job_id) {
  if (*job_id == kLastJobId) *job_id = TheFixture().last_job_id;
}

}  // namespace
}  // namespace convnet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  convnet::fuzz::TheFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convnet;
  using namespace convnet::fuzz;
  using server::ConvNetService;
  if (size == 0) return 0;
  const Rpc rpc = static_cast<Rpc>(data[0] % kRpcCount);
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (rpc) {
    case Rpc::kPredict: {
      v1::PredictRequest request;
      if (!request.ParseFromString(bytes)) break;
      v1::PredictResponse response;
      Check(TheFixture().stub->Predict(CallContext().get(), request, &response));
      break;
    }
    case Rpc::kTrain: {
      v1::TrainResponse response;
      grpc::ServerContext context;
      v1::TrainRequest request;
      if (!request.ParseFromString(bytes)) break;
      const grpc::Status status = TheFixture().service->Train(&context, &request, &response);
      Check(status);
      if (status.ok()) {
        TheFixture().last_job_id = response.job_id();
        v1::CancelTrainingJobRequest cancel;
        cancel.set_job_id(response.job_id());
        v1::TrainingJob job;
        grpc::ServerContext cancel_context;
        const grpc::Status cancelled = TheFixture().service->CancelTrainingJob(&cancel_context, &cancel, &job);
        // Cancelling may come too late (FAILED_PRECONDITION: the job already
        // finished), never fail otherwise.
        if (!cancelled.ok() && cancelled.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
          std::fprintf(stderr, "cancelling job %s: %s\n", response.job_id().c_str(),
                       cancelled.error_message().c_str());
          std::abort();
        }
      }
      break;
    }
    case Rpc::kGetTrainingJob: {
      v1::GetTrainingJobRequest request;
      if (!request.ParseFromString(bytes)) break;
      ResolveJobId(request.mutable_job_id());
      v1::TrainingJob response;
      grpc::ServerContext context;
      Check(TheFixture().service->GetTrainingJob(&context, &request, &response));
      break;
    }
    case Rpc::kListTrainingJobs: {
      v1::ListTrainingJobsResponse response;
      Call<v1::ListTrainingJobsRequest>(bytes, &ConvNetService::ListTrainingJobs, &response);
      break;
    }
    case Rpc::kCancelTrainingJob: {
      v1::TrainingJob response;
      Call<v1::CancelTrainingJobRequest>(bytes, &ConvNetService::CancelTrainingJob, &response);
      break;
    }
    case Rpc::kGetGradients: {
      v1::GetGradientsResponse response;
      Call<v1::GetGradientsRequest>(bytes, &ConvNetService::GetGradients, &response);
      break;
    }
    case Rpc::kListModels: {
      v1::ListModelsResponse response;
      Call<v1::ListModelsRequest>(bytes, &ConvNetService::ListModels, &response);
      break;
    }
    case Rpc::kGetModel: {
      v1::GetModelResponse response;
      Call<v1::GetModelRequest>(bytes, &ConvNetService::GetModel, &response);
      break;
    }
    case Rpc::kGetServerStats: {
      v1::GetServerStatsResponse response;
      Call<v1::GetServerStatsRequest>(bytes, &ConvNetService::GetServerStats, &response);
      break;
    }
    case Rpc::kWatchTrainingJob: {
      // Every submitted job is cancelled at once, so a known job is finished
      // and its watch replays it and ends; an unknown one is NOT_FOUND.
      v1::WatchTrainingJobRequest request;
      if (!request.ParseFromString(bytes)) break;
      ResolveJobId(request.mutable_job_id());
      auto context = CallContext();
      std::unique_ptr<grpc::ClientReader<v1::WatchTrainingJobResponse>> reader =
          TheFixture().stub->WatchTrainingJob(context.get(), request);
      v1::WatchTrainingJobResponse message;
      while (reader->Read(&message)) {
      }
      Check(reader->Finish());
      break;
    }
  }
  return 0;
}
