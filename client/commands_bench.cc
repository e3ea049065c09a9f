// convnet_client bench: a closed-loop load generator in the spirit of ghz.
//
// --concurrency calls are kept in flight at all times: each one, as soon as its
// answer arrives, is replaced by the next (closed loop), for --duration after a
// --warmup. The calls are spread over --connections channels (separate TCP
// connections); each channel has its own completion queue driven by one client
// thread, so the client adds one thread per connection, not one per call, and
// leaves the machine's cores to the server (on two shared cores, client threads
// that take turns with the server would be measured as server latency).
//
// Every call sends the same request bytes, serialised once (images from the
// bundled MNIST test set unless --images says otherwise), through gRPC's generic
// stub; answers are checked for their status only, not parsed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/json.h"
#include "core/idx.h"

ABSL_FLAG(std::string, rpc, "predict", "bench: the call to measure: predict, gradients or health");
ABSL_FLAG(int32_t, concurrency, 1, "bench: calls kept in flight at all times (closed loop)");
ABSL_FLAG(int32_t, connections, 1, "bench: channels (TCP connections) the calls are spread over");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "bench: how long to measure");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "bench: how long to run before measuring");
// Shared with predict (defined in commands_predict.cc).
ABSL_DECLARE_FLAG(int64_t, images_per_request);

namespace convnet::client {
namespace {

using Clock = std::chrono::steady_clock;

#ifndef CONVNET_DATA_DIR
#define CONVNET_DATA_DIR "data"
#endif
constexpr char kDefaultImages[] = CONVNET_DATA_DIR "/mnist/t10k-images-idx3-ubyte.gz";
constexpr char kDefaultLabels[] = CONVNET_DATA_DIR "/mnist/t10k-labels-idx1-ubyte.gz";
constexpr int kImageBytes = 784;

// The request of the benchmark, serialised once.
struct Workload {
  std::string method;  // full gRPC method name
  std::string request;
  int64_t images_per_request = 0;  // 0 for health
};

absl::StatusOr<Workload> BuildWorkload(const std::string& rpc) {
  Workload workload;
  if (rpc == "health") {
    workload.method = "/grpc.health.v1.Health/Check";  // HealthCheckRequest{service: ""} is empty
    return workload;
  }
  if (rpc != "predict" && rpc != "gradients") {
    return absl::InvalidArgumentError(absl::StrCat("--rpc must be predict, gradients or health, got \"", rpc, "\""));
  }
  const int64_t n = absl::GetFlag(FLAGS_images_per_request);
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("--images_per_request must be >= 1, got ", n));
  const std::string images_path = absl::GetFlag(FLAGS_images).empty() ? kDefaultImages : absl::GetFlag(FLAGS_images);
  absl::StatusOr<std::vector<uint8_t>> images = ReadIdxImages(images_path);
  if (!images.ok()) return images.status();
  const int64_t available = static_cast<int64_t>(images->size() / kImageBytes);
  const int64_t first = absl::GetFlag(FLAGS_index);
  if (available == 0 || first < 0 || first >= available) {
    return absl::InvalidArgumentError(absl::StrCat("--index must be in 0..", available - 1, ", got ", first));
  }
  // Image i of the request is image (first + i) mod available of the file.
  const auto image_at = [&](int64_t i) {
    return std::string(reinterpret_cast<const char*>(images->data()) + ((first + i) % available) * kImageBytes,
                       kImageBytes);
  };
  workload.images_per_request = n;
  if (rpc == "predict") {
    workload.method = "/convnet.v1.ConvNet/Predict";
    convnet::v1::PredictRequest request;
    request.set_model_name(ModelFlag());
    request.set_version(absl::GetFlag(FLAGS_version));
    for (int64_t i = 0; i < n; ++i) request.add_images()->set_pixels(image_at(i));
    workload.request = request.SerializeAsString();
    return workload;
  }
  workload.method = "/convnet.v1.ConvNet/GetGradients";
  const std::string labels_path = absl::GetFlag(FLAGS_labels).empty() ? kDefaultLabels : absl::GetFlag(FLAGS_labels);
  absl::StatusOr<std::vector<uint8_t>> labels = ReadIdxLabels(labels_path);
  if (!labels.ok()) return labels.status();
  if (static_cast<int64_t>(labels->size()) != available) {
    return absl::InvalidArgumentError(absl::StrCat(labels_path, " has ", labels->size(), " labels for ", available,
                                                   " images"));
  }
  absl::StatusOr<convnet::v1::Cost> cost = ParseCost(absl::GetFlag(FLAGS_cost));
  if (!cost.ok()) return cost.status();
  convnet::v1::GetGradientsRequest request;
  request.mutable_model()->set_model_name(ModelFlag());
  request.mutable_model()->set_version(absl::GetFlag(FLAGS_version));
  request.set_cost(*cost);
  for (int64_t i = 0; i < n; ++i) {
    convnet::v1::Example* example = request.add_examples();
    example->mutable_image()->set_pixels(image_at(i));
    example->set_label((*labels)[(first + i) % available]);
  }
  workload.request = request.SerializeAsString();
  return workload;
}

// One call slot of the closed loop.
struct Call {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::ByteBuffer response;
  grpc::Status status;
  Clock::time_point start;
};

// One connection: its channel, its completion queue and the thread that drives
// its share of the calls. Results are the thread's own until it is joined.
struct Lane {
  const Connection* connection = nullptr;  // makes the channel and every call's context
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  grpc::CompletionQueue cq;
  std::vector<Call> calls;
  std::vector<int64_t> latencies_ns;  // calls that ended inside the measured window
  std::map<int, int64_t> errors;      // status code -> count, inside the window
  std::string first_error;
};

struct Window {
  Clock::time_point measure_from;
  Clock::time_point stop_at;
  absl::Duration timeout;
};

void Issue(Lane& lane, const Workload& workload, const grpc::ByteBuffer& request, Call& call,
           absl::Duration timeout) {
  call.context = lane.connection->NewCallContext(timeout);
  call.response.Clear();
  call.start = Clock::now();
  call.reader = lane.stub->PrepareUnaryCall(call.context.get(), workload.method, request, &lane.cq);
  call.reader->StartCall();
  call.reader->Finish(&call.response, &call.status, &call);
}

void Drive(Lane& lane, const Workload& workload, const Window& window) {
  const grpc::ByteBuffer request = [&] {
    grpc::Slice slice(workload.request);
    return grpc::ByteBuffer(&slice, 1);
  }();
  size_t outstanding = lane.calls.size();
  for (Call& call : lane.calls) Issue(lane, workload, request, call, window.timeout);
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && lane.cq.Next(&tag, &ok)) {
    Call& call = *static_cast<Call*>(tag);
    const Clock::time_point now = Clock::now();
    if (now >= window.measure_from && now <= window.stop_at) {
      lane.latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - call.start).count());
      if (!call.status.ok()) {
        ++lane.errors[static_cast<int>(call.status.error_code())];
        if (lane.first_error.empty()) {
          lane.first_error = absl::StrCat(StatusCodeName(call.status.error_code()), ": ",
                                                call.status.error_message());
        }
      }
    }
    if (now < window.stop_at) {
      Issue(lane, workload, request, call, window.timeout);
    } else {
      --outstanding;
    }
  }
  lane.cq.Shutdown();
  while (lane.cq.Next(&tag, &ok)) {
  }
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::max(1.0, std::ceil(q * static_cast<double>(sorted.size()))));
  return static_cast<double>(sorted[std::min(rank, sorted.size()) - 1]);
}

}  // namespace

int RunBench(Connection& connection, const Arguments& arguments) {
  if (!arguments.empty()) return UsageError("bench", "no arguments expected");
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  int connections = absl::GetFlag(FLAGS_connections);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (concurrency < 1 || concurrency > 10000) {
    return UsageError("bench", absl::StrCat("--concurrency must be in 1..10000, got ", concurrency));
  }
  if (connections < 1 || connections > 256) {
    return UsageError("bench", absl::StrCat("--connections must be in 1..256, got ", connections));
  }
  connections = std::min(connections, concurrency);
  if (duration <= absl::ZeroDuration() || duration > absl::Hours(1)) {
    return UsageError("bench", absl::StrCat("--duration must be in (0, 1h], got ", absl::FormatDuration(duration)));
  }
  if (warmup < absl::ZeroDuration() || warmup > absl::Minutes(10)) {
    return UsageError("bench", absl::StrCat("--warmup must be in [0, 10m], got ", absl::FormatDuration(warmup)));
  }
  absl::StatusOr<Workload> workload = BuildWorkload(rpc);
  if (!workload.ok()) return UsageError("bench", workload.status().message());

  std::vector<std::unique_ptr<Lane>> pool;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments channel_arguments;
    // A subchannel pool per channel: each channel gets its own TCP connection.
    channel_arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_arguments.SetMaxReceiveMessageSize(-1);
    channel_arguments.SetMaxSendMessageSize(-1);
    auto one = std::make_unique<Lane>();
    one->connection = &connection;
    one->channel = connection.NewChannel(channel_arguments);
    one->stub = std::make_unique<grpc::GenericStub>(one->channel);
    if (!one->channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
      return connection.ReportError(
          "bench", grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                absl::StrCat("no connection to ", connection.address(), " within ",
                                             absl::FormatDuration(timeout))));
    }
    pool.push_back(std::move(one));
  }
  for (int i = 0; i < concurrency; ++i) pool[i % connections]->calls.emplace_back();

  Window window;
  const Clock::time_point begin = Clock::now();
  window.measure_from = begin + absl::ToChronoNanoseconds(warmup);
  window.stop_at = window.measure_from + absl::ToChronoNanoseconds(duration);
  window.timeout = timeout;
  std::vector<std::thread> threads;
  for (auto& one : pool) threads.emplace_back([&one, &workload, &window] { Drive(*one, *workload, window); });
  for (std::thread& thread : threads) thread.join();

  std::vector<int64_t> latencies;
  std::map<int, int64_t> errors;
  std::string first_error;
  for (const auto& one : pool) {
    latencies.insert(latencies.end(), one->latencies_ns.begin(), one->latencies_ns.end());
    for (const auto& [code, count] : one->errors) errors[code] += count;
    if (first_error.empty()) first_error = one->first_error;
  }
  std::sort(latencies.begin(), latencies.end());
  const int64_t requests = static_cast<int64_t>(latencies.size());
  int64_t failed = 0;
  for (const auto& [code, count] : errors) failed += count;
  const double seconds = absl::ToDoubleSeconds(duration);
  const double requests_per_second = static_cast<double>(requests) / seconds;
  // Images answered: successful calls only.
  const double images_per_second =
      static_cast<double>(requests - failed) * static_cast<double>(workload->images_per_request) / seconds;
  double sum = 0;
  for (int64_t latency : latencies) sum += static_cast<double>(latency);
  const double mean = requests == 0 ? 0 : sum / static_cast<double>(requests);
  const double p50 = Percentile(latencies, 0.50), p90 = Percentile(latencies, 0.90),
               p99 = Percentile(latencies, 0.99), max = latencies.empty() ? 0 : latencies.back();

  if (absl::GetFlag(FLAGS_json)) {
    JsonWriter json;
    json.BeginObject()
        .Key("address").String(connection.address())
        .Key("rpc").String(rpc)
        .Key("concurrency").Int(concurrency)
        .Key("connections").Int(connections)
        .Key("images_per_request").Int(workload->images_per_request)
        .Key("warmup_seconds").Double(absl::ToDoubleSeconds(warmup))
        .Key("duration_seconds").Double(seconds)
        .Key("requests").Int(requests)
        .Key("errors").Int(failed)
        .Key("requests_per_second").Double(requests_per_second)
        .Key("images_per_second").Double(images_per_second)
        .Key("latency_us").BeginObject()
        .Key("p50").Double(p50 / 1e3)
        .Key("p90").Double(p90 / 1e3)
        .Key("p99").Double(p99 / 1e3)
        .Key("max").Double(max / 1e3)
        .Key("mean").Double(mean / 1e3)
        .EndObject()
        .Key("errors_by_code").BeginObject();
    for (const auto& [code, count] : errors) json.Key(StatusCodeName(static_cast<grpc::StatusCode>(code))).Int(count);
    json.EndObject().Key("first_error").String(first_error).EndObject();
    absl::PrintF("%s\n", json.str());
  } else {
    absl::PrintF("%s against %s: concurrency %d over %d connection(s)%s, %s after %s of warm-up\n", rpc,
                 connection.address(), concurrency, connections,
                 workload->images_per_request > 0 ? absl::StrCat(", ", workload->images_per_request,
                                                                 " image(s) per request")
                                                  : "",
                 absl::FormatDuration(duration), absl::FormatDuration(warmup));
    absl::PrintF("requests    %d (%d errors)\n", requests, failed);
    absl::PrintF("requests/s  %.1f\n", requests_per_second);
    if (workload->images_per_request > 0) absl::PrintF("images/s    %.1f\n", images_per_second);
    absl::PrintF("latency     p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us, mean %.1f us\n", p50 / 1e3,
                 p90 / 1e3, p99 / 1e3, max / 1e3, mean / 1e3);
    if (!errors.empty()) {
      std::vector<std::string> parts;
      for (const auto& [code, count] : errors) {
        parts.push_back(absl::StrCat(StatusCodeName(static_cast<grpc::StatusCode>(code)), " ", count));
      }
      absl::PrintF("errors      %s (first: %s)\n", absl::StrJoin(parts, ", "), first_error);
    }
  }
  // Every call failed: the server refused the workload (e.g. an unknown model).
  if (requests > 0 && failed == requests) {
    absl::FPrintF(stderr, "error: every call failed; first: %s\n", first_error);
    return kExitRefused;
  }
  if (requests == 0) {
    absl::FPrintF(stderr, "error: no call finished within --duration\n");
    return kExitUnreachable;
  }
  return kExitOk;
}

}  // namespace convnet::client
