// Statistics of the ConvNet service since the server started, for
// GetServerStats: per RPC method the calls, the errors by status code and a
// latency histogram; per model version the images predicted.
//
// Recording is on the path of every call, so it is built to cost next to
// nothing: each method has its own cache-line-aligned block of relaxed atomic
// counters (no lock), and latencies go into a fixed log-scale histogram with 8
// buckets per doubling from 1 us to about 2 minutes (percentiles within about
// 5%). The per-version image counts are atomics found under a shared
// (reader) lock, taken exclusively only to add a version.
#ifndef CONVNET_SERVER_SERVER_STATS_H_
#define CONVNET_SERVER_SERVER_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace convnet::server {

// The methods of convnet.v1.ConvNet, in the order of the service definition.
enum class RpcMethod {
  kPredict,
  kTrain,
  kGetTrainingJob,
  kListTrainingJobs,
  kCancelTrainingJob,
  kWatchTrainingJob,
  kGetGradients,
  kListModels,
  kGetModel,
  kGetServerStats,
};
inline constexpr int kRpcMethodCount = 10;

// "Predict", "Train", ...
const char* RpcMethodName(RpcMethod method);

// A fixed log-scale histogram of durations in nanoseconds. Add() is lock-free
// and wait-free (one relaxed fetch_add per counter).
class LatencyHistogram {
 public:
  // Bucket 0 holds everything below 1024 ns; then 8 buckets per doubling up to
  // 2^37 ns (about 137 s); the last bucket holds everything above.
  static constexpr int kSubBuckets = 8;
  static constexpr int kMinExponent = 10;
  static constexpr int kMaxExponent = 37;
  static constexpr int kBuckets = (kMaxExponent - kMinExponent) * kSubBuckets + 2;

  void Add(int64_t nanoseconds);

  // A consistent-enough copy for reporting (each counter read once).
  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t total = 0;
    uint64_t sum_ns = 0;
    // The q-quantile (0 < q <= 1) in nanoseconds, interpolated linearly inside
    // its bucket; 0 when empty.
    double Quantile(double q) const;
    double MeanNs() const { return total == 0 ? 0.0 : static_cast<double>(sum_ns) / total; }
  };
  Snapshot Read() const;

  // The bucket of a duration, and a bucket's range [lower, upper) in ns.
  static int BucketOf(int64_t nanoseconds);
  static std::pair<double, double> BucketRange(int bucket);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

class ServerStats {
 public:
  // gRPC's status codes 0 (OK) .. 16 (UNAUTHENTICATED).
  static constexpr int kStatusCodes = 17;

  ServerStats();
  ServerStats(const ServerStats&) = delete;
  ServerStats& operator=(const ServerStats&) = delete;

  // One finished call of `method` with gRPC status code `code` (0..16; other
  // values count as UNKNOWN) that took `nanoseconds` in the handler.
  void RecordCall(RpcMethod method, int code, int64_t nanoseconds);

  // A successful Predict of `images` images answered by model/version.
  void RecordPrediction(absl::string_view model_name, int64_t version, int64_t images);

  struct MethodSnapshot {
    RpcMethod method;
    uint64_t count = 0;
    std::array<uint64_t, kStatusCodes> by_code{};  // [0] = OK
    LatencyHistogram::Snapshot latency;
  };
  struct VersionSnapshot {
    std::string model_name;
    int64_t version = 0;
    uint64_t predict_requests = 0;
    uint64_t images = 0;
  };
  // Every method in RpcMethod order.
  std::vector<MethodSnapshot> Methods() const;
  // Versions with at least one prediction, by name then version.
  std::vector<VersionSnapshot> Versions() const;

 private:
  struct alignas(64) MethodCounters {
    std::atomic<uint64_t> count{0};
    std::array<std::atomic<uint64_t>, kStatusCodes> by_code{};
    LatencyHistogram latency;
  };
  struct VersionCounters {
    std::atomic<uint64_t> predict_requests{0};
    std::atomic<uint64_t> images{0};
  };

  std::array<MethodCounters, kRpcMethodCount> methods_;
  // model name -> version -> counters. Keyed by std::string so that a lookup
  // by string_view does not allocate. Predict only reads the maps (a shared
  // lock, so callers never wait for each other) and bumps the atomic counters,
  // which the unique_ptr keeps in place; the exclusive lock is taken once per
  // version, to insert it.
  mutable absl::Mutex versions_mu_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<int64_t, std::unique_ptr<VersionCounters>>> versions_
      ABSL_GUARDED_BY(versions_mu_);
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_SERVER_STATS_H_
