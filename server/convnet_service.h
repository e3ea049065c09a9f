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
#include "convnet/v1/convnet.grpc.pb.h"
#include "core/thread_pool.h"
#include "server/auth.h"
#include "server/dataset_registry.h"
#include "server/job_manager.h"
#include "server/model_repository.h"
#include "server/server_stats.h"

namespace convnet::server {

struct ServiceLimits {
  size_t max_batch = 1024;                // images per Predict, examples per GetGradients
  size_t max_message_bytes = 64 << 20;    // largest response the service builds
  size_t max_inline_examples = 60000;     // examples per inline training or evaluation set
  int max_concurrent_gradients = 2;       // GetGradients calls with include_deltas at once; >= 1
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

// Predict runs on gRPC's callback API: the handler answers on the thread that
// read the request, with no hand-off to a synchronous-server thread. At
// concurrency 64 that is what brings a one-image Predict near the health
// check's calls/s (docs/BENCHMARKS.md, "The service"). The other methods stay
// synchronous: they are rarer and some of them block (CancelTrainingJob waits,
// WatchTrainingJob streams), which the callback threads must not do.
class ConvNetService final : public v1::ConvNet::WithCallbackMethod_Predict<v1::ConvNet::Service> {
 public:
  // Every pointer must outlive the service. `authorizer` null = no call needs
  // a token; otherwise every call is checked by it before its body runs.
  ConvNetService(ModelRepository* repository, DatasetRegistry* datasets, JobManager* jobs, ThreadPool* pool,
                 const ServiceLimits& limits, const Authorizer* authorizer = nullptr,
                 ServiceTestHooks test_hooks = {});

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context, const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override;
  grpc::Status Train(grpc::ServerContext* context, const v1::TrainRequest* request,
                     v1::TrainResponse* response) override;
  grpc::Status GetTrainingJob(grpc::ServerContext* context, const v1::GetTrainingJobRequest* request,
                              v1::TrainingJob* response) override;
  grpc::Status ListTrainingJobs(grpc::ServerContext* context, const v1::ListTrainingJobsRequest* request,
                                v1::ListTrainingJobsResponse* response) override;
  grpc::Status CancelTrainingJob(grpc::ServerContext* context, const v1::CancelTrainingJobRequest* request,
                                 v1::TrainingJob* response) override;
  grpc::Status WatchTrainingJob(grpc::ServerContext* context, const v1::WatchTrainingJobRequest* request,
                                grpc::ServerWriter<v1::WatchTrainingJobResponse>* writer) override;
  grpc::Status GetGradients(grpc::ServerContext* context, const v1::GetGradientsRequest* request,
                            v1::GetGradientsResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::GetModelResponse* response) override;
  grpc::Status GetServerStats(grpc::ServerContext* context, const v1::GetServerStatsRequest* request,
                              v1::GetServerStatsResponse* response) override;

  // The longest CancelTrainingJob waits for the job to stop.
  static constexpr absl::Duration kCancelWait = absl::Seconds(10);

  // Graceful shutdown: after BeginDrain() every new call is answered
  // UNAVAILABLE at once; WaitUntilIdle() returns true as soon as no call is in
  // flight, or false when `deadline` passes first.
  void BeginDrain();
  bool WaitUntilIdle(absl::Time deadline) const;
  // Calls being handled now (for statistics and shutdown).
  int CallsInFlight() const { return in_flight_.load(); }

 private:
  // Runs one handler body: counts the call in flight, refuses it while
  // draining, refuses it UNAUTHENTICATED when authorizer_ says the call lacks
  // the token (`exports_parameters`: a GetModel that exports parameters),
  // maps the absl::Status to a grpc::Status and turns anything thrown into an
  // error status, so that no exception reaches gRPC; records the call's
  // status code and duration in stats_.
  template <typename Body>
  grpc::Status Handle(RpcMethod method, const grpc::ServerContextBase& context, Body&& body);
  template <typename Body>
  grpc::Status Handle(RpcMethod method, const grpc::ServerContextBase& context, bool exports_parameters,
                      Body&& body);

  // Predict and GetGradients stop when the call's deadline passes, and answer
  // DEADLINE_EXCEEDED also when it passes after the work, before the answer.
  absl::Status DoPredict(const grpc::ServerContextBase& context, const v1::PredictRequest& request,
                         v1::PredictResponse* response);
  absl::Status DoTrain(const v1::TrainRequest& request, v1::TrainResponse* response);
  absl::Status DoCancel(grpc::ServerContext& context, const v1::CancelTrainingJobRequest& request,
                        v1::TrainingJob* response);
  absl::Status DoWatch(grpc::ServerContext& context, const v1::WatchTrainingJobRequest& request,
                       grpc::ServerWriter<v1::WatchTrainingJobResponse>& writer);
  absl::Status DoGetGradients(const grpc::ServerContextBase& context, const v1::GetGradientsRequest& request,
                              v1::GetGradientsResponse* response);
  absl::Status DoListTrainingJobs(const v1::ListTrainingJobsRequest& request,
                                  v1::ListTrainingJobsResponse* response);
  absl::Status DoListModels(const v1::ListModelsRequest& request, v1::ListModelsResponse* response);
  absl::Status DoGetModel(const v1::GetModelRequest& request, v1::GetModelResponse* response);
  absl::Status DoGetServerStats(v1::GetServerStatsResponse* response);

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
  const absl::Time started_ = absl::Now();
  ServerStats stats_;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_CONVNET_SERVICE_H_
