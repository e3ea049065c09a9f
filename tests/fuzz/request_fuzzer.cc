// libFuzzer target: request handling of the ConvNet service. The first byte
// picks the RPC, the rest is sent as its request bytes to the real service of
// server/convnet_service.h, which parses them itself (bytes that do not parse
// are INVALID_ARGUMENT), validates the request and does the work on a small
// model (fuzz_service.h). The service may refuse anything, but must neither
// crash nor trip a sanitizer, and never answer INTERNAL or UNKNOWN (which
// would mean an exception or a server-side fault on a client's input).
//
// Every call goes through a gRPC server in this process, without a listening
// port, over its in-process channel, through a generic stub (raw bytes). A
// job_id of kLastJobId in WatchTrainingJob or GetTrainingJob stands for the
// last job submitted: those requests are parsed here, the id replaced and the
// request serialized again.
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
#include "absl/synchronization/notification.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
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
  std::unique_ptr<grpc::GenericStub> raw;   // the same channel, raw bytes
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
      server::ServiceLimits{kMaxBatch, size_t{1} << 20, kMaxBatch, /*max_concurrent_gradients=*/2,
                            /*max_watch_streams=*/64});
  grpc::ServerBuilder builder;
  builder.RegisterService(f->service.get());
  f->server = builder.BuildAndStart();
  if (f->server == nullptr) Fail("cannot start the in-process gRPC server");
  std::shared_ptr<grpc::Channel> channel = f->server->InProcessChannel(grpc::ChannelArguments());
  f->stub = v1::ConvNet::NewStub(channel);
  f->raw = std::make_unique<grpc::GenericStub>(channel);
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

// The client side of a call through the in-process channel; an input never
// takes long (16 images at most), so the deadline only guards against a hang.
std::unique_ptr<grpc::ClientContext> CallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return context;
}

// Calls `method` (e.g. "ListModels") with `bytes` as its request; for the
// unary methods, `response` receives the response bytes.
grpc::Status CallRaw(const char* method, const std::string& bytes, grpc::ByteBuffer* response) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::Status status;
  absl::Notification done;
  auto context = CallContext();
  TheFixture().raw->UnaryCall(context.get(), std::string("/convnet.v1.ConvNet/") + method, grpc::StubOptions(),
                              &request, response, [&](grpc::Status call_status) {
                                status = std::move(call_status);
                                done.Notify();
                              });
  done.WaitForNotification();
  return status;
}

void CheckRaw(const char* method, const std::string& bytes) {
  grpc::ByteBuffer response;
  Check(CallRaw(method, bytes, &response));
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
  if (size == 0) return 0;
  const Rpc rpc = static_cast<Rpc>(data[0] % kRpcCount);
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (rpc) {
    case Rpc::kPredict:
      CheckRaw("Predict", bytes);
      break;
    case Rpc::kTrain: {
      grpc::ByteBuffer response_bytes;
      const grpc::Status status = CallRaw("Train", bytes, &response_bytes);
      Check(status);
      v1::TrainResponse response;
      if (status.ok() && grpc::SerializationTraits<v1::TrainResponse>::Deserialize(&response_bytes, &response).ok()) {
        TheFixture().last_job_id = response.job_id();
        v1::CancelTrainingJobRequest cancel;
        cancel.set_job_id(response.job_id());
        v1::TrainingJob job;
        const grpc::Status cancelled = TheFixture().stub->CancelTrainingJob(CallContext().get(), cancel, &job);
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
      if (!request.ParseFromString(bytes)) {
        CheckRaw("GetTrainingJob", bytes);
        break;
      }
      ResolveJobId(request.mutable_job_id());
      v1::TrainingJob response;
      Check(TheFixture().stub->GetTrainingJob(CallContext().get(), request, &response));
      break;
    }
    case Rpc::kListTrainingJobs:
      CheckRaw("ListTrainingJobs", bytes);
      break;
    case Rpc::kCancelTrainingJob:
      CheckRaw("CancelTrainingJob", bytes);
      break;
    case Rpc::kGetGradients:
      CheckRaw("GetGradients", bytes);
      break;
    case Rpc::kListModels:
      CheckRaw("ListModels", bytes);
      break;
    case Rpc::kGetModel:
      CheckRaw("GetModel", bytes);
      break;
    case Rpc::kGetServerStats:
      CheckRaw("GetServerStats", bytes);
      break;
    case Rpc::kWatchTrainingJob: {
      // Every submitted job is cancelled at once, so a known job is finished
      // and its watch replays it and ends; an unknown one is NOT_FOUND.
      v1::WatchTrainingJobRequest request;
      if (!request.ParseFromString(bytes)) {
        CheckRaw("WatchTrainingJob", bytes);  // refused before any message
        break;
      }
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
