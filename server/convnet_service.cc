#include "server/convnet_service.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "core/network.h"
#include "core/shape.h"
#include "core/status_macros.h"
#include "core/stop_token.h"
#include "server/log.h"
#include "server/names.h"
#include "server/paging.h"
#include "server/proto_conversion.h"
#include "server/raw_messages.h"
#include "server/request_decoding.h"
#include "server/status_conversion.h"

namespace convnet::server {
namespace {

std::string FormatBytes(size_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// The call's deadline; gRPC reports "no deadline" (gpr_inf_future) as
// time_point::max().
absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// Stops the core's work when the call's deadline passes (Predict: at most
// --max_batch images, well under a second, so only the deadline is watched
// and a call without one costs nothing).
StopToken CallDeadline(const grpc::ServerContextBase& context) {
  const absl::Time deadline = DeadlineOf(context);
  if (deadline == absl::InfiniteFuture()) return StopToken();
  return StopToken(deadline);
}

// How often a GetGradients asks gRPC whether its client has cancelled it.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(5);

// Stops the core's work when the call's deadline passes or its client cancels
// it (GetGradients: seconds of work for large K). gRPC is asked on the
// handler's thread only (it runs its share of the ParallelFor's tasks), at
// most every kCancelPollInterval, first after that long: the synchronous API
// answers IsCancelled by polling the call's completion queue, which allows
// only a few concurrent pollers and costs tens of microseconds (asked before
// every task, it slowed a 256-example GetGradients by a third). A shorter
// call never asks; a cancelled one stops within the interval and a task. The
// core pool's threads see the stop when the handler's thread has latched it.
// Must be called on the handler's thread.
StopToken CallDeadlineOrCancellation(const grpc::ServerContextBase& context) {
  const std::thread::id handler = std::this_thread::get_id();
  // `next_poll` is only touched on the handler's thread.
  return StopToken(DeadlineOf(context), nullptr,
                   [&context, handler, next_poll = absl::Now() + kCancelPollInterval]() mutable {
                     if (std::this_thread::get_id() != handler) return false;
                     const absl::Time now = absl::Now();
                     if (now < next_poll) return false;
                     next_poll = now + kCancelPollInterval;
                     return context.IsCancelled();
                   });
}

// A client whose deadline passes cancels the call itself (it resets its
// HTTP/2 stream), often before the server's clock reaches the deadline the
// server set when the call's headers arrived, which is later on a busy
// machine (seen: a GetGradients with a 50 ms deadline cancelled ahead of it).
// A cancellation this close to the deadline is counted as the deadline's.
constexpr absl::Duration kDeadlineSkew = absl::Milliseconds(500);

absl::Status DeadlineIfCancelledAtIt(const absl::Status& status, const grpc::ServerContextBase& context) {
  if (!absl::IsCancelled(status) || absl::Now() < DeadlineOf(context) - kDeadlineSkew) return status;
  return absl::DeadlineExceededError(absl::StrCat(status.message(), " by the client at its deadline"));
}

// Adds items[first..] to `out`, each converted by `fill`, while the page has
// room: at most `limit` items and what `budget` allows (the first one always
// when `at_least_one`, so that a page is never empty for want of space).
// Returns the index after the last item added.
template <typename Item, typename Proto, typename Fill>
size_t FillPage(const std::vector<Item>& items, size_t first, size_t limit, bool at_least_one, PageBudget& budget,
                google::protobuf::RepeatedPtrField<Proto>* out, const Fill& fill) {
  size_t next = first;
  while (next < items.size() && next - first < limit) {
    Proto* item = out->Add();
    fill(items[next], item);
    if (!budget.Take(item->ByteSizeLong()) && !(at_least_one && next == first)) {
      out->RemoveLast();
      break;
    }
    ++next;
  }
  return next;
}

// The index of the first of `versions` (ascending) after version `after`.
size_t FirstVersionAfter(const std::vector<ServedVersion>& versions, int64_t after) {
  return std::upper_bound(versions.begin(), versions.end(), after,
                          [](int64_t version, const ServedVersion& served) { return version < served.version; }) -
         versions.begin();
}

// Releases a --max_concurrent_gradients slot when the call ends.
struct GradientsSlot {
  std::atomic<int>* taken = nullptr;
  ~GradientsSlot() {
    if (taken != nullptr) taken->fetch_sub(1);
  }
};

// "/convnet.v1.ConvNet/<method>", the path a method is called by.
const char* MethodPath(RpcMethod method) {
  static const auto* const paths = [] {
    auto* table = new std::array<std::string, kRpcMethodCount>;
    for (int i = 0; i < kRpcMethodCount; ++i) {
      (*table)[i] = absl::StrCat("/", v1::ConvNet::service_full_name(), "/", RpcMethodName(static_cast<RpcMethod>(i)));
    }
    return table;
  }();
  return (*paths)[static_cast<int>(method)].c_str();
}

// Whether a call exports a model's parameters, which needs the token when
// one is configured (docs/SECURITY.md): only a GetModel with
// include_parameters does.
bool ExportsParameters(const google::protobuf::MessageLite&) { return false; }
bool ExportsParameters(const v1::GetModelRequest& request) { return request.include_parameters(); }

// Why a call reached its handler without a request message: gRPC hands
// over a call whose client gave up (its deadline passed, or it cancelled)
// while the request was still in transit. OK when the call is alive (the
// client sent no message: ParseRequest says so).
absl::Status WhyNoRequest(RpcMethod method, const grpc::ServerContextBase& context) {
  const absl::Status gone = absl::CancelledError(
      absl::StrCat(RpcMethodName(method), ": the call ended before its request arrived"));
  if (absl::Now() >= DeadlineOf(context) - kDeadlineSkew) return DeadlineIfCancelledAtIt(gone, context);
  if (context.IsCancelled()) return gone;
  return absl::OkStatus();
}

}  // namespace

// One call from its start to its end: counted in flight (which the drain
// waits for) while the object lives; End() records its status code and
// duration in stats_ and logs server-side faults.
class ConvNetService::CallScope {
 public:
  CallScope(ConvNetService& service, RpcMethod method)
      : service_(service), method_(method), start_(std::chrono::steady_clock::now()) {
    service_.in_flight_.fetch_add(1);
  }
  ~CallScope() { service_.in_flight_.fetch_sub(1); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

  grpc::Status End(const absl::Status& status) {
    switch (status.code()) {
      case absl::StatusCode::kInternal:
      case absl::StatusCode::kDataLoss:
      case absl::StatusCode::kUnknown:
        LogError(absl::StrCat(RpcMethodName(method_), " failed: ", status.ToString()));
        break;
      default:
        break;
    }
    service_.stats_.RecordCall(
        method_, static_cast<int>(status.code()),
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count());
    return ToGrpcStatus(status);
  }

 private:
  ConvNetService& service_;
  const RpcMethod method_;
  const std::chrono::steady_clock::time_point start_;
};

template <typename Body>
absl::Status ConvNetService::Guarded(RpcMethod method, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(RpcMethodName(method), ": the server ran out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(RpcMethodName(method), ": unexpected exception: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(RpcMethodName(method), ": unexpected exception"));
  }
}

template <typename Request>
absl::Status ConvNetService::Admit(RpcMethod method, const grpc::ServerContextBase& context,
                                   const grpc::ByteBuffer* request_bytes, Request* request) {
  if (draining_.load()) return absl::UnavailableError("the server is shutting down");
  if (!request_bytes->Valid()) CONVNET_RETURN_IF_ERROR(WhyNoRequest(method, context));
  CONVNET_RETURN_IF_ERROR(ParseRequest(RpcMethodName(method), *request_bytes, request));
  // The token check allocates nothing when no token is configured or the
  // method needs none (Predict stays cheap).
  if (authorizer_ != nullptr) return authorizer_->Check(context, method, ExportsParameters(*request));
  return absl::OkStatus();
}

template <typename Request, typename Response>
grpc::Status ConvNetService::HandleUnary(
    RpcMethod method, const grpc::ServerContextBase& context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes,
    absl::Status (ConvNetService::*handler)(const grpc::ServerContextBase&, const Request&, Response*)) {
  CallScope call(*this, method);
  Request request;
  Response response;
  return call.End(Guarded(method, [&]() -> absl::Status {
    CONVNET_RETURN_IF_ERROR(Admit(method, context, request_bytes, &request));
    CONVNET_RETURN_IF_ERROR((this->*handler)(context, request, &response));
    return SerializeMessage(response, response_bytes);
  }));
}

void ConvNetService::AddCallbackMethod(RpcMethod method, grpc::internal::RpcMethod::RpcType type,
                                       grpc::internal::MethodHandler* handler) {
  auto* registered = new grpc::internal::RpcServiceMethod(MethodPath(method), type, handler);
  registered->SetServerApiType(grpc::internal::RpcServiceMethod::ApiType::RAW_CALL_BACK);
  AddMethod(registered);
}

template <typename Request, typename Response>
void ConvNetService::AddSyncMethod(
    RpcMethod method,
    absl::Status (ConvNetService::*handler)(const grpc::ServerContextBase&, const Request&, Response*)) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      MethodPath(method), grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<ConvNetService, grpc::ByteBuffer, grpc::ByteBuffer>(
          [method, handler](ConvNetService* service, grpc::ServerContext* context, const grpc::ByteBuffer* request,
                            grpc::ByteBuffer* response) {
            return service->HandleUnary(method, *context, request, response, handler);
          },
          this)));
}

// --- WatchTrainingJob -------------------------------------------------------

absl::Status ConvNetService::TakeWatchSlot() {
  if (open_watches_.fetch_add(1) >= limits_.max_watch_streams) {
    open_watches_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        "WatchTrainingJob: ", limits_.max_watch_streams,
        " watch streams are open, the server's limit (--max_watch_streams=", limits_.max_watch_streams,
        "); close one or retry later"));
  }
  return absl::OkStatus();
}

void ConvNetService::ReleaseWatchSlot() { open_watches_.fetch_sub(1); }

// One WatchTrainingJob stream, with no thread of its own: it writes the next
// message when the previous write has completed and the job has news (told by
// JobManager::Follow's on_news, on the thread that changed the job), and ends
// after the final snapshot, or with CANCELLED when the client goes away.
//
// Locks: on_news runs under the job's watcher lock and takes mu_; mu_ is
// never held while calling gRPC (StartWrite and Finish may run reactions
// inline) nor while ending the subscription.
class ConvNetService::WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  WatchReactor(ConvNetService& service, const grpc::CallbackServerContext& context,
               const grpc::ByteBuffer* request_bytes)
      : service_(service), call_(service, RpcMethod::kWatchTrainingJob) {
    const absl::Status started = Guarded(RpcMethod::kWatchTrainingJob, [&]() -> absl::Status {
      v1::WatchTrainingJobRequest request;
      CONVNET_RETURN_IF_ERROR(service_.Admit(RpcMethod::kWatchTrainingJob, context, request_bytes, &request));
      if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
      CONVNET_RETURN_IF_ERROR(service_.TakeWatchSlot());
      holds_slot_ = true;
      CONVNET_ASSIGN_OR_RETURN(std::unique_ptr<JobWatch> watch,
                               service_.jobs_->Follow(request.job_id(), [this] { Pump(); }));
      absl::MutexLock lock(&mu_);
      watch_ = std::move(watch);
      return absl::OkStatus();
    });
    if (started.ok()) {
      Pump();
    } else {
      End(started);
    }
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
    }
    if (ok) {
      Pump();
    } else {
      End(absl::CancelledError("the watcher went away"));
    }
  }

  void OnCancel() override { End(absl::CancelledError("the watcher went away")); }

  void OnDone() override {
    std::unique_ptr<JobWatch> watch;
    {
      absl::MutexLock lock(&mu_);
      watch = std::move(watch_);
    }
    watch.reset();  // waits for an on_news in progress; none comes after
    if (holds_slot_) service_.ReleaseWatchSlot();
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = final_status_;
    }
    call_.End(status);
    delete this;
  }

 private:
  // Writes the next message, or ends the stream after the final snapshot;
  // nothing while a write is in flight (its completion calls Pump again) or
  // when the job has no news (on_news calls Pump again).
  void Pump() {
    enum class Step { kWait, kWrite, kEnd } step = Step::kWait;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (watch_ == nullptr || write_in_flight_ || ended_) return;
      if (queued_.empty()) status = Guarded(RpcMethod::kWatchTrainingJob, [&] { return QueueUpdates(); });
      if (!status.ok()) {
        step = Step::kEnd;
      } else if (!queued_.empty()) {
        writing_ = std::move(queued_.front());
        queued_.pop_front();
        write_in_flight_ = true;
        step = Step::kWrite;
      } else if (watch_->finished()) {
        step = Step::kEnd;  // OK: the final snapshot has been written
      }
    }
    switch (step) {
      case Step::kWait:
        break;
      case Step::kWrite:
        StartWrite(&writing_);
        break;
      case Step::kEnd:
        End(status);
        break;
    }
  }

  // Serializes the job's new updates into queued_.
  absl::Status QueueUpdates() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::WatchTrainingJobResponse message;
    for (const JobUpdate& update : watch_->Next()) {
      message.Clear();
      if (const JobInfo* job = std::get_if<JobInfo>(&update)) {
        ToProto(*job, message.mutable_job());
      } else if (const JobState* state = std::get_if<JobState>(&update)) {
        message.set_state(JobStateToProto(*state));
      } else if (const TrainProgress* progress = std::get_if<TrainProgress>(&update)) {
        ToProto(*progress, message.mutable_progress());
      } else {
        ToProto(std::get<EpochMetrics>(update), message.mutable_epoch());
      }
      CONVNET_RETURN_IF_ERROR(SerializeMessage(message, &queued_.emplace_back()));
    }
    return absl::OkStatus();
  }

  // Ends the stream with `status` (the first call only).
  void End(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
      final_status_ = status;
    }
    Finish(ToGrpcStatus(status));
  }

  ConvNetService& service_;
  CallScope call_;
  bool holds_slot_ = false;  // set in the constructor only

  absl::Mutex mu_;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);  // set by the first End()
  std::unique_ptr<JobWatch> watch_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> queued_ ABSL_GUARDED_BY(mu_);  // serialized, not yet written
  grpc::ByteBuffer writing_;  // the message being written; changed only when no write is in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called
};
void ConvNetService::BeginDrain() { draining_.store(true); }

bool ConvNetService::WaitUntilIdle(absl::Time deadline) const {
  while (in_flight_.load() > 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

ConvNetService::ConvNetService(ModelRepository* repository, DatasetRegistry* datasets, JobManager* jobs,
                               ThreadPool* pool, const ServiceLimits& limits, const Authorizer* authorizer,
                               ServiceTestHooks test_hooks)
    : repository_(repository),
      datasets_(datasets),
      jobs_(jobs),
      pool_(pool),
      limits_(limits),
      authorizer_(authorizer),
      test_hooks_(std::move(test_hooks)) {
  // In the order of the service definition (RpcMethod).
  AddCallbackMethod(RpcMethod::kPredict, grpc::internal::RpcMethod::NORMAL_RPC,
                    new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                        [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                               grpc::ByteBuffer* response) { return Predict(context, request, response); }));
  AddSyncMethod(RpcMethod::kTrain, &ConvNetService::DoTrain);
  AddSyncMethod(RpcMethod::kGetTrainingJob, &ConvNetService::DoGetTrainingJob);
  AddSyncMethod(RpcMethod::kListTrainingJobs, &ConvNetService::DoListTrainingJobs);
  AddSyncMethod(RpcMethod::kCancelTrainingJob, &ConvNetService::DoCancel);
  AddCallbackMethod(RpcMethod::kWatchTrainingJob, grpc::internal::RpcMethod::SERVER_STREAMING,
                    new grpc::internal::CallbackServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                        [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
                          return new WatchReactor(*this, *context, request);
                        }));
  AddSyncMethod(RpcMethod::kGetGradients, &ConvNetService::DoGetGradients);
  AddSyncMethod(RpcMethod::kListModels, &ConvNetService::DoListModels);
  AddSyncMethod(RpcMethod::kGetModel, &ConvNetService::DoGetModel);
  AddSyncMethod(RpcMethod::kGetServerStats, &ConvNetService::DoGetServerStats);
}

absl::Status ConvNetService::CheckResponseSize(const google::protobuf::Message& response,
                                               absl::string_view hint) const {
  const size_t bytes = response.ByteSizeLong();
  if (bytes > limits_.max_message_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("the response would be ", FormatBytes(bytes),
                                                     ", over the server's limit of ",
                                                     FormatBytes(limits_.max_message_bytes),
                                                     " (--max_message_bytes); ", hint));
  }
  return absl::OkStatus();
}

absl::Status ConvNetService::CheckDeadlineBeforeAnswer(const grpc::ServerContextBase& context) const {
  const absl::Time deadline = DeadlineOf(context);
  if (test_hooks_.before_answer) test_hooks_.before_answer(deadline);
  const absl::Time now = absl::Now();
  if (now < deadline) return absl::OkStatus();
  const absl::Duration late = absl::Trunc(now - deadline, absl::Milliseconds(1));
  return absl::DeadlineExceededError(
      absl::StrCat("the call's deadline passed ", absl::FormatDuration(late), " before its answer was ready"));
}

// --- Predict ----------------------------------------------------------------

grpc::ServerUnaryReactor* ConvNetService::Predict(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  // The work is done here, before the reactor is returned: a one-image
  // Predict takes microseconds, and larger batches spread over the core pool.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(HandleUnary(RpcMethod::kPredict, *context, request, response, &ConvNetService::DoPredict));
  return reactor;
}

absl::Status ConvNetService::DoPredict(const grpc::ServerContextBase& context, const v1::PredictRequest& request,
                                       v1::PredictResponse* response) {
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", request.model_name()));
  CONVNET_RETURN_IF_ERROR(ValidateVersion("version", request.version()));
  CONVNET_ASSIGN_OR_RETURN(DecodedImages images,
                           DecodeImages("images", request.images(), limits_.max_batch, "--max_batch"));
  // One immutable snapshot answers the whole batch.
  CONVNET_ASSIGN_OR_RETURN(ServedVersion served, repository_->Get(request.model_name(), request.version()));
  CONVNET_ASSIGN_OR_RETURN(std::vector<Prediction> predictions,
                           convnet::Predict(served.model->parameters, images.batch(), pool_, CallDeadline(context)));
  response->set_model_name(served.model_name);
  response->set_version(served.version);
  response->mutable_predictions()->Reserve(static_cast<int>(predictions.size()));
  for (const Prediction& prediction : predictions) {
    v1::ImagePrediction* out = response->add_predictions();
    out->mutable_outputs()->Assign(prediction.a3.begin(), prediction.a3.end());
    out->set_predicted_class(prediction.predicted_class);
  }
  CONVNET_RETURN_IF_ERROR(CheckDeadlineBeforeAnswer(context));
  stats_.RecordPrediction(served.model_name, served.version, static_cast<int64_t>(predictions.size()));
  return absl::OkStatus();
}

// --- Train ------------------------------------------------------------------

absl::Status ConvNetService::DoTrain(const grpc::ServerContextBase&, const v1::TrainRequest& request,
                                     v1::TrainResponse* response) {
  CONVNET_ASSIGN_OR_RETURN(JobSpec spec,
                           DecodeTrainRequest(request, {repository_, datasets_, limits_.max_inline_examples}));
  CONVNET_ASSIGN_OR_RETURN(JobInfo job, jobs_->Submit(std::move(spec)));
  response->set_job_id(job.id);
  ToProto(job, response->mutable_job());
  return absl::OkStatus();
}

// --- Jobs -------------------------------------------------------------------

absl::Status ConvNetService::DoGetTrainingJob(const grpc::ServerContextBase&,
                                              const v1::GetTrainingJobRequest& request, v1::TrainingJob* response) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  CONVNET_ASSIGN_OR_RETURN(JobInfo job, jobs_->Get(request.job_id()));
  ToProto(job, response);
  return absl::OkStatus();
}

absl::Status ConvNetService::DoListTrainingJobs(const grpc::ServerContextBase&,
                                                const v1::ListTrainingJobsRequest& request,
                                                v1::ListTrainingJobsResponse* response) {
  if (!request.model_name().empty()) CONVNET_RETURN_IF_ERROR(ValidateName("model_name", request.model_name()));
  CONVNET_ASSIGN_OR_RETURN(std::optional<JobState> state, JobStateFilterFromProto("state", request.state()));
  CONVNET_ASSIGN_OR_RETURN(const int page_size, ResolvePageSize("page_size", request.page_size()));
  const std::string query =
      absl::StrCat("ListTrainingJobs model_name=", request.model_name(), " state=", request.state());
  // The key: the id of the last job of the previous page.
  CONVNET_ASSIGN_OR_RETURN(const std::string older_than, DecodePageToken("page_token", request.page_token(), query));
  // One more than the page holds tells whether another page follows.
  const std::vector<JobInfo> jobs = jobs_->List(request.model_name(), state, older_than, page_size + 1);
  PageBudget budget(limits_.max_message_bytes);
  const size_t next = FillPage(jobs, 0, page_size, /*at_least_one=*/true, budget, response->mutable_jobs(),
                               [](const JobInfo& job, v1::TrainingJob* out) { ToProto(job, out); });
  if (next < jobs.size()) response->set_next_page_token(EncodePageToken(query, jobs[next - 1].id));
  return CheckResponseSize(*response, "a single job is over the limit");
}

absl::Status ConvNetService::DoCancel(const grpc::ServerContextBase& context,
                                      const v1::CancelTrainingJobRequest& request, v1::TrainingJob* response) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  // Wait for the job to stop, but answer before the client's deadline.
  absl::Time deadline = absl::Now() + kCancelWait;
  if (context.deadline() != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(context.deadline()) - absl::Milliseconds(50));
  }
  CONVNET_ASSIGN_OR_RETURN(JobInfo job, jobs_->Cancel(request.job_id(), deadline));
  ToProto(job, response);
  return absl::OkStatus();
}

// --- GetGradients -----------------------------------------------------------

absl::Status ConvNetService::DoGetGradients(const grpc::ServerContextBase& context,
                                            const v1::GetGradientsRequest& request,
                                            v1::GetGradientsResponse* response) {
  CONVNET_ASSIGN_OR_RETURN(DecodedGradientsRequest decoded,
                           DecodeGradientsRequest(request, *repository_, limits_.max_batch));
  if (!decoded.model_name.empty()) {
    response->set_model_name(decoded.model_name);
    response->set_version(decoded.version);
  }
  const DecodedExamples& examples = decoded.examples;
  const Parameters& parameters = *decoded.parameters;

  const size_t n = examples.labels.size();
  const int k = parameters.k();
  GradientsSlot slot;
  if (request.include_deltas()) {
    // delta1 (4 bytes) and the mask (1 byte) per conv position, plus z3, a3, delta3.
    const size_t estimate = n * (static_cast<size_t>(k) * kConvSize * 5 + 3 * kClasses * 4 + 64) +
                            ParameterCount(k) * 4;
    if (estimate > limits_.max_message_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "include_deltas: the response for ", n, " examples with feature_maps ", k, " would be about ",
          FormatBytes(estimate), ", over the server's limit of ", FormatBytes(limits_.max_message_bytes),
          " (--max_message_bytes); send fewer examples"));
    }
    // Each such call holds up to a few times its response in memory: only
    // --max_concurrent_gradients run at once; the others are refused at once.
    if (gradients_in_flight_.fetch_add(1) >= limits_.max_concurrent_gradients) {
      gradients_in_flight_.fetch_sub(1);
      return absl::ResourceExhaustedError(absl::StrCat(
          "include_deltas: the server already computes ", limits_.max_concurrent_gradients,
          " GetGradients calls with deltas, its limit (--max_concurrent_gradients=",
          limits_.max_concurrent_gradients, "); retry later, or call without include_deltas"));
    }
    slot.taken = &gradients_in_flight_;
    if (test_hooks_.gradients_admitted) test_hooks_.gradients_admitted();
  }

  BatchGradient gradient;
  std::vector<Explanation> explanations;
  const StopToken stop = CallDeadlineOrCancellation(context);
  if (request.include_deltas()) {
    auto explained = ExplainGradient(parameters, examples.images.batch(), examples.labels, decoded.cost, pool_, stop);
    if (!explained.ok()) return DeadlineIfCancelledAtIt(explained.status(), context);
    gradient = std::move(explained->first);
    explanations = std::move(explained->second);
  } else {
    auto computed = ComputeGradient(parameters, examples.images.batch(), examples.labels, decoded.cost, pool_, stop);
    if (!computed.ok()) return DeadlineIfCancelledAtIt(computed.status(), context);
    gradient = *std::move(computed);
  }

  response->set_feature_maps(k);
  response->set_mean_cost(gradient.mean_cost);
  response->mutable_costs()->Assign(gradient.costs.begin(), gradient.costs.end());
  response->mutable_predicted_classes()->Reserve(static_cast<int>(gradient.predicted.size()));
  for (uint8_t predicted : gradient.predicted) response->add_predicted_classes(predicted);
  response->mutable_gradient()->Assign(gradient.gradient.begin(), gradient.gradient.end());
  for (const Explanation& explanation : explanations) {
    v1::ExampleDeltas* deltas = response->add_deltas();
    deltas->mutable_z3()->Assign(explanation.z3.begin(), explanation.z3.end());
    deltas->mutable_a3()->Assign(explanation.a3.begin(), explanation.a3.end());
    deltas->mutable_delta3()->Assign(explanation.delta3.begin(), explanation.delta3.end());
    deltas->mutable_delta1()->Assign(explanation.delta1.begin(), explanation.delta1.end());
    deltas->set_argmax_mask(explanation.argmax_mask.data(), explanation.argmax_mask.size());
  }
  CONVNET_RETURN_IF_ERROR(CheckResponseSize(*response, "send fewer examples"));
  return CheckDeadlineBeforeAnswer(context);
}

// --- Models -----------------------------------------------------------------

absl::Status ConvNetService::DoListModels(const grpc::ServerContextBase&, const v1::ListModelsRequest& request,
                                          v1::ListModelsResponse* response) {
  CONVNET_ASSIGN_OR_RETURN(const int page_size, ResolvePageSize("page_size", request.page_size()));
  constexpr absl::string_view kQuery = "ListModels";
  // The key: "<name>" after a whole model, "<name>/<version>" inside one.
  CONVNET_ASSIGN_OR_RETURN(const std::string key, DecodePageToken("page_token", request.page_token(), kQuery));
  std::string after_model = key;
  int64_t after_version = 0;  // 0: the whole model `after_model` is done
  if (const size_t slash = key.find('/'); slash != std::string::npos) {
    after_model = key.substr(0, slash);
    if (!absl::SimpleAtoi(key.substr(slash + 1), &after_version) || after_version < 1) {
      return MalformedPageToken("page_token");
    }
  }

  const std::vector<ModelVersions> models = repository_->List();
  auto start = std::lower_bound(models.begin(), models.end(), after_model,
                                [](const ModelVersions& model, const std::string& name) {
                                  return model.model_name < name;
                                });
  if (!key.empty() && after_version == 0 && start != models.end() && start->model_name == after_model) ++start;
  PageBudget budget(limits_.max_message_bytes);
  const auto metadata = [](const ServedVersion& version, v1::ModelVersion* out) {
    ToProto(version, /*include_parameters=*/false, out);
  };
  std::string next_key;
  int models_added = 0;
  for (auto model = start; model != models.end(); ++model) {
    if (models_added == page_size) {
      next_key = std::prev(model)->model_name;
      break;
    }
    const size_t first = model->model_name == after_model ? FirstVersionAfter(model->versions, after_version) : 0;
    if (first == model->versions.size()) continue;
    const bool first_on_page = response->models().empty();
    v1::Model* out = response->add_models();
    out->set_name(model->model_name);
    out->set_latest_version(model->versions.back().version);
    const bool fits = budget.Take(out->ByteSizeLong());  // the model's own fields
    const size_t next = fits || first_on_page ? FillPage(model->versions, first, SIZE_MAX, first_on_page, budget,
                                                         out->mutable_versions(), metadata)
                                              : first;
    if (next == first) {
      // Not one of its versions fits: the page ends before this model.
      response->mutable_models()->RemoveLast();
      next_key = std::prev(model)->model_name;
      break;
    }
    ++models_added;
    if (next < model->versions.size()) {
      next_key = absl::StrCat(model->model_name, "/", model->versions[next - 1].version);
      break;
    }
  }
  if (!next_key.empty()) response->set_next_page_token(EncodePageToken(kQuery, next_key));
  return CheckResponseSize(*response, "a single version is over the limit");
}

absl::Status ConvNetService::DoGetModel(const grpc::ServerContextBase&, const v1::GetModelRequest& request,
                                        v1::GetModelResponse* response) {
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", request.model_name()));
  CONVNET_RETURN_IF_ERROR(ValidateVersion("version", request.version()));
  CONVNET_ASSIGN_OR_RETURN(const int page_size, ResolvePageSize("page_size", request.page_size()));
  if (request.version() != 0 && !request.page_token().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: pages are of every version (version 0), got version ",
                                                   request.version(), " and a page_token"));
  }
  CONVNET_ASSIGN_OR_RETURN(ModelVersions model, repository_->GetModel(request.model_name()));
  v1::Model* out = response->mutable_model();
  out->set_name(model.model_name);
  out->set_latest_version(model.versions.back().version);
  const auto convert = [&](const ServedVersion& version, v1::ModelVersion* converted) {
    ToProto(version, request.include_parameters(), converted);
  };
  if (request.version() != 0) {
    CONVNET_ASSIGN_OR_RETURN(ServedVersion one, repository_->Get(request.model_name(), request.version()));
    convert(one, out->add_versions());
    return CheckResponseSize(*response, "a single version is over the limit");
  }
  const std::string query = absl::StrCat("GetModel model_name=", request.model_name(),
                                         " include_parameters=", request.include_parameters());
  // The key: the last version of the previous page.
  CONVNET_ASSIGN_OR_RETURN(const std::string key, DecodePageToken("page_token", request.page_token(), query));
  int64_t after = 0;
  if (!key.empty() && (!absl::SimpleAtoi(key, &after) || after < 1)) return MalformedPageToken("page_token");
  PageBudget budget(limits_.max_message_bytes);
  const size_t first = FirstVersionAfter(model.versions, after);
  const size_t next = FillPage(model.versions, first, page_size, /*at_least_one=*/true, budget,
                               out->mutable_versions(), convert);
  if (next < model.versions.size()) {
    response->set_next_page_token(EncodePageToken(query, absl::StrCat(model.versions[next - 1].version)));
  }
  return CheckResponseSize(*response, "a single version is over the limit");
}

// --- GetServerStats ---------------------------------------------------------

absl::Status ConvNetService::DoGetServerStats(const grpc::ServerContextBase&, const v1::GetServerStatsRequest&,
                                              v1::GetServerStatsResponse* response) {
  const absl::Time now = absl::Now();
  response->set_started_unix_ms(absl::ToUnixMillis(started_));
  response->set_uptime_seconds(absl::ToDoubleSeconds(now - started_));
  for (const ServerStats::MethodSnapshot& method : stats_.Methods()) {
    v1::MethodStats* out = response->add_methods();
    out->set_method(RpcMethodName(method.method));
    out->set_count(static_cast<int64_t>(method.count));
    uint64_t errors = 0;
    for (int code = 1; code < ServerStats::kStatusCodes; ++code) {
      if (method.by_code[code] == 0) continue;
      errors += method.by_code[code];
      v1::StatusCodeCount* by_code = out->add_errors_by_code();
      by_code->set_code(code);
      // gRPC's codes are absl's canonical codes, names included.
      by_code->set_code_name(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
      by_code->set_count(static_cast<int64_t>(method.by_code[code]));
    }
    out->set_errors(static_cast<int64_t>(errors));
    out->set_latency_p50_us(method.latency.Quantile(0.50) / 1000.0);
    out->set_latency_p99_us(method.latency.Quantile(0.99) / 1000.0);
    out->set_latency_mean_us(method.latency.MeanNs() / 1000.0);
  }
  for (const ServerStats::VersionSnapshot& version : stats_.Versions()) {
    v1::ModelVersionStats* out = response->add_model_versions();
    out->set_model_name(version.model_name);
    out->set_version(version.version);
    out->set_predict_requests(static_cast<int64_t>(version.predict_requests));
    out->set_images_predicted(static_cast<int64_t>(version.images));
  }
  const std::array<int64_t, 5> jobs = jobs_->CountByState();
  for (int state = 0; state < 5; ++state) {
    v1::JobStateCount* out = response->add_jobs();
    out->set_state(JobStateToProto(static_cast<JobState>(state)));
    out->set_count(jobs[state]);
  }
  response->set_thread_pool_threads(pool_->threads());
  response->set_thread_pool_queue_length(static_cast<int64_t>(pool_->QueueLength()));
  response->set_calls_in_flight(in_flight_.load());
  return absl::OkStatus();
}

}  // namespace convnet::server
