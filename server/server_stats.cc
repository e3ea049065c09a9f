#include "server/server_stats.h"

#include <algorithm>
#include <bit>

namespace convnet::server {

const char* RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kPredict: return "Predict";
    case RpcMethod::kTrain: return "Train";
    case RpcMethod::kGetTrainingJob: return "GetTrainingJob";
    case RpcMethod::kListTrainingJobs: return "ListTrainingJobs";
    case RpcMethod::kCancelTrainingJob: return "CancelTrainingJob";
    case RpcMethod::kWatchTrainingJob: return "WatchTrainingJob";
    case RpcMethod::kGetGradients: return "GetGradients";
    case RpcMethod::kListModels: return "ListModels";
    case RpcMethod::kGetModel: return "GetModel";
    case RpcMethod::kGetServerStats: return "GetServerStats";
  }
  return "?";
}

// --- LatencyHistogram ---------------------------------------------------------

int LatencyHistogram::BucketOf(int64_t nanoseconds) {
  if (nanoseconds < (int64_t{1} << kMinExponent)) return 0;
  const uint64_t v = static_cast<uint64_t>(nanoseconds);
  const int exponent = 63 - std::countl_zero(v);  // v in [2^e, 2^(e+1))
  if (exponent >= kMaxExponent) return kBuckets - 1;
  const int sub = static_cast<int>((v >> (exponent - 3)) & (kSubBuckets - 1));  // kSubBuckets == 8
  return 1 + (exponent - kMinExponent) * kSubBuckets + sub;
}

std::pair<double, double> LatencyHistogram::BucketRange(int bucket) {
  if (bucket <= 0) return {0.0, static_cast<double>(int64_t{1} << kMinExponent)};
  if (bucket >= kBuckets - 1) {
    const double top = static_cast<double>(int64_t{1} << kMaxExponent);
    return {top, top};
  }
  const int exponent = (bucket - 1) / kSubBuckets + kMinExponent;
  const int sub = (bucket - 1) % kSubBuckets;
  const double step = static_cast<double>(int64_t{1} << (exponent - 3));
  return {(kSubBuckets + sub) * step, (kSubBuckets + sub + 1) * step};
}

void LatencyHistogram::Add(int64_t nanoseconds) {
  nanoseconds = std::max<int64_t>(nanoseconds, 0);
  counts_[BucketOf(nanoseconds)].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(nanoseconds), std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot snapshot;
  for (int i = 0; i < kBuckets; ++i) {
    snapshot.counts[i] = counts_[i].load(std::memory_order_relaxed);
    snapshot.total += snapshot.counts[i];
  }
  snapshot.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  return snapshot;
}

double LatencyHistogram::Snapshot::Quantile(double q) const {
  if (total == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the quantile among `total` sorted values (1-based, >= 1).
  const double rank = std::max(1.0, q * static_cast<double>(total));
  uint64_t below = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(below + counts[i]) >= rank) {
      const auto [lower, upper] = BucketRange(i);
      const double fraction = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
      return lower + (upper - lower) * fraction;
    }
    below += counts[i];
  }
  return BucketRange(kBuckets - 1).first;
}

// --- ServerStats ----------------------------------------------------------------

ServerStats::ServerStats() = default;

void ServerStats::RecordCall(RpcMethod method, int code, int64_t nanoseconds) {
  MethodCounters& counters = methods_[static_cast<int>(method)];
  if (code < 0 || code >= kStatusCodes) code = 2;  // UNKNOWN
  counters.count.fetch_add(1, std::memory_order_relaxed);
  counters.by_code[code].fetch_add(1, std::memory_order_relaxed);
  counters.latency.Add(nanoseconds);
}

void ServerStats::RecordPrediction(absl::string_view model_name, int64_t version, int64_t images) {
  const auto add = [images](VersionCounters& counters) {
    counters.predict_requests.fetch_add(1, std::memory_order_relaxed);
    counters.images.fetch_add(static_cast<uint64_t>(std::max<int64_t>(images, 0)), std::memory_order_relaxed);
  };
  {
    absl::ReaderMutexLock lock(&versions_mu_);
    if (auto model = versions_.find(model_name); model != versions_.end()) {
      if (auto counters = model->second.find(version); counters != model->second.end()) {
        add(*counters->second);
        return;
      }
    }
  }
  absl::MutexLock lock(&versions_mu_);
  auto model = versions_.find(model_name);
  if (model == versions_.end()) model = versions_.try_emplace(std::string(model_name)).first;
  std::unique_ptr<VersionCounters>& counters = model->second[version];
  if (counters == nullptr) counters = std::make_unique<VersionCounters>();
  add(*counters);
}

std::vector<ServerStats::MethodSnapshot> ServerStats::Methods() const {
  std::vector<MethodSnapshot> result;
  result.reserve(kRpcMethodCount);
  for (int i = 0; i < kRpcMethodCount; ++i) {
    const MethodCounters& counters = methods_[i];
    MethodSnapshot snapshot;
    snapshot.method = static_cast<RpcMethod>(i);
    snapshot.count = counters.count.load(std::memory_order_relaxed);
    for (int code = 0; code < kStatusCodes; ++code) {
      snapshot.by_code[code] = counters.by_code[code].load(std::memory_order_relaxed);
    }
    snapshot.latency = counters.latency.Read();
    result.push_back(std::move(snapshot));
  }
  return result;
}

std::vector<ServerStats::VersionSnapshot> ServerStats::Versions() const {
  std::vector<VersionSnapshot> result;
  {
    absl::MutexLock lock(&versions_mu_);
    for (const auto& [name, versions] : versions_) {
      for (const auto& [version, counters] : versions) {
        result.push_back({name, version, counters->predict_requests.load(std::memory_order_relaxed),
                          counters->images.load(std::memory_order_relaxed)});
      }
    }
  }
  std::sort(result.begin(), result.end(), [](const VersionSnapshot& a, const VersionSnapshot& b) {
    return a.model_name != b.model_name ? a.model_name < b.model_name : a.version < b.version;
  });
  return result;
}

}  // namespace convnet::server
