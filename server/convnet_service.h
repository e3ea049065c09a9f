// The RPC layer of convnet.v1.ConvNet. It only translates: it validates each
// request (request_decoding.h), calls the core, the model repository, the
// dataset registry or the job manager, and maps the result and the
// absl::Status to the response and the grpc::Status (codes 1:1). No math here.
// No exception escapes a handler: anything thrown becomes INTERNAL.
#ifndef CONVNET_SERVER_CONVNET_SERVICE_H_
#define CONVNET_SERVER_CONVNET_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "convnet/v1/convnet.pb.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "core/thread_pool.h"
#include "server/auth.h"
#include "server/dataset_registry.h"
#include "server/job_manager.h"
#include "server/model_repository.h"
#include "server/server_stats.h"

namespace convnet::server {

// The server's limits on one call (their defaults and bounds live in
// ServerOptions, server.h, with the flags that set them).
struct ServiceLimits {
  size_t max_batch;                 // images per Predict, examples per GetGradients
  size_t max_message_bytes;         // largest response the service builds
  size_t max_inline_examples;       // examples per inline training or evaluation set
  int max_concurrent_gradients;     // GetGradients calls with include_deltas at once; >= 1
  size_t max_watch_streams;         // WatchTrainingJob streams open at once; >= 1
};

// Seams for tests that must hold a call at an exact point of its handler
// (e.g. until its deadline has passed). Each, when set, runs on the handler's
// thread; the server binary never sets them, and unset they cost one test of
// an empty std::function.
struct ServiceTestHooks {
  // GetGradients with include_deltas, once the call holds one of the
  // --max_concurrent_gradients slots, before any work.
  std::function<void()> gradients_admitted;
  // Predict and GetGradients, once the work is done, just before the handler
  // checks the call's deadline and answers. `deadline` is the call's
  // (InfiniteFuture when it has none).
  std::function<void(absl::Time deadline)> before_answer;
};

// Every method is registered with raw request and response bytes
// (raw_messages.h): the service parses each request itself, so that bytes
// that do not parse are INVALID_ARGUMENT naming the method, counted in
// GetServerStats like any other call.
//
// Predict runs on gRPC's callback API: the handler answers on the thread that
// read the request, with no hand-off to a synchronous-server thread. At
// concurrency 64 that is what brings a one-image Predict near the health
// check's calls/s (docs/BENCHMARKS.md, "The service"). WatchTrainingJob runs on it
// too, as a reactor that writes when its job has news (JobManager::Follow),
// so that an open stream holds no thread. The other methods stay
// synchronous: they are rarer and some of them block (CancelTrainingJob
// waits, GetGradients computes for seconds), which the callback threads must
// not do.
class ConvNetService final : public grpc::Service {
 public:
  // Every pointer must outlive the service. `authorizer` null = no call needs
  // a token; otherwise every call is checked by it before its body runs.
  ConvNetService(ModelRepository* repository, DatasetRegistry* datasets, JobManager* jobs, ThreadPool* pool,
                 const ServiceLimits& limits, const Authorizer* authorizer = nullptr,
                 ServiceTestHooks test_hooks = {});

  // The longest CancelTrainingJob waits for the job to stop.
  static constexpr absl::Duration kCancelWait = absl::Seconds(10);

  // Graceful shutdown: after BeginDrain() every new call is answered
  // UNAVAILABLE at once; WaitUntilIdle() returns true as soon as no call is in
  // flight (open watch streams included), or false when `deadline` passes
  // first.
  void BeginDrain();
  bool WaitUntilIdle(absl::Time deadline) const;
  // Calls being handled now (for statistics and shutdown).
  int CallsInFlight() const { return in_flight_.load(); }

 private:
  class CallScope;
  class WatchReactor;

  // Registers `method` as a method of gRPC's callback API whose request and
  // response are bytes, run by `handler` (taken over).
  void AddCallbackMethod(RpcMethod method, grpc::internal::RpcMethod::RpcType type,
                         grpc::internal::MethodHandler* handler);
  // Registers `method` as a synchronous unary method: its request bytes are
  // parsed into a Request and `handler` runs on them (HandleUnary).
  template <typename Request, typename Response>
  void AddSyncMethod(RpcMethod method,
                     absl::Status (ConvNetService::*handler)(const grpc::ServerContextBase&, const Request&,
                                                             Response*));

  // Runs one unary call: counts it in flight, admits it (Admit), runs
  // `handler` on the parsed request, serializes the response into
  // `response_bytes`, and records the call's status code and duration in
  // stats_. Anything thrown becomes an error status (Guarded).
  template <typename Request, typename Response>
  grpc::Status HandleUnary(RpcMethod method, const grpc::ServerContextBase& context,
                           const grpc::ByteBuffer* request_bytes, grpc::ByteBuffer* response_bytes,
                           absl::Status (ConvNetService::*handler)(const grpc::ServerContextBase&, const Request&,
                                                                   Response*));

  // Lets a call in, or says why not: UNAVAILABLE while draining;
  // INVALID_ARGUMENT when `request_bytes` do not parse as a Request (parsed
  // into `request` otherwise); UNAUTHENTICATED when authorizer_ says the call
  // lacks the token (GetModel needs it when it exports parameters).
  template <typename Request>
  absl::Status Admit(RpcMethod method, const grpc::ServerContextBase& context,
                     const grpc::ByteBuffer* request_bytes, Request* request);

  // `body()`, with anything it throws turned into an error status, so that no
  // exception reaches gRPC.
  template <typename Body>
  static absl::Status Guarded(RpcMethod method, Body&& body);

  // Reserves one of the --max_watch_streams stream slots; RESOURCE_EXHAUSTED
  // naming the flag when all are taken. ReleaseWatchSlot() gives it back.
  absl::Status TakeWatchSlot();
  void ReleaseWatchSlot();

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response);

  // The typed bodies. Predict and GetGradients stop when the call's deadline
  // passes, and answer DEADLINE_EXCEEDED also when it passes after the work,
  // before the answer.
  absl::Status DoPredict(const grpc::ServerContextBase& context, const v1::PredictRequest& request,
                         v1::PredictResponse* response);
  absl::Status DoTrain(const grpc::ServerContextBase& context, const v1::TrainRequest& request,
                       v1::TrainResponse* response);
  absl::Status DoGetTrainingJob(const grpc::ServerContextBase& context, const v1::GetTrainingJobRequest& request,
                                v1::TrainingJob* response);
  absl::Status DoListTrainingJobs(const grpc::ServerContextBase& context,
                                  const v1::ListTrainingJobsRequest& request,
                                  v1::ListTrainingJobsResponse* response);
  absl::Status DoCancel(const grpc::ServerContextBase& context, const v1::CancelTrainingJobRequest& request,
                        v1::TrainingJob* response);
  absl::Status DoGetGradients(const grpc::ServerContextBase& context, const v1::GetGradientsRequest& request,
                              v1::GetGradientsResponse* response);
  absl::Status DoListModels(const grpc::ServerContextBase& context, const v1::ListModelsRequest& request,
                            v1::ListModelsResponse* response);
  absl::Status DoGetModel(const grpc::ServerContextBase& context, const v1::GetModelRequest& request,
                          v1::GetModelResponse* response);
  absl::Status DoGetServerStats(const grpc::ServerContextBase& context, const v1::GetServerStatsRequest& request,
                                v1::GetServerStatsResponse* response);

  // RESOURCE_EXHAUSTED when a built response is over --max_message_bytes.
  absl::Status CheckResponseSize(const google::protobuf::Message& response, absl::string_view hint) const;
  // Predict and GetGradients, when the work is done: DEADLINE_EXCEEDED when
  // the call's deadline has passed (nobody waits for the answer), else OK.
  absl::Status CheckDeadlineBeforeAnswer(const grpc::ServerContextBase& context) const;

  ModelRepository* const repository_;
  DatasetRegistry* const datasets_;
  JobManager* const jobs_;
  ThreadPool* const pool_;
  const ServiceLimits limits_;
  const Authorizer* const authorizer_;
  const ServiceTestHooks test_hooks_;
  std::atomic<int> in_flight_{0};
  // GetGradients calls with include_deltas past their admission.
  std::atomic<int> gradients_in_flight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<size_t> open_watches_{0};
  const absl::Time started_ = absl::Now();
  ServerStats stats_;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_CONVNET_SERVICE_H_
