#include "call_log.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace convnet::load_testing {

void CallLog::Record(const std::string& method, const grpc::Status& status, absl::Time start, absl::Time end) {
  absl::MutexLock lock(&mutex_);
  records_.push_back(CallRecord{method, status.error_code(), start, end});
}

void CallLog::AddProblem(const std::string& description) {
  absl::MutexLock lock(&mutex_);
  ++problem_count_;
  if (problems_.size() < kKeptProblems) problems_.push_back(description);
}

int64_t CallLog::problem_count() const {
  absl::MutexLock lock(&mutex_);
  return problem_count_;
}

std::vector<CallRecord> CallLog::records() const {
  absl::MutexLock lock(&mutex_);
  return records_;
}

namespace {

// The q-quantile (0..1) of sorted values, nearest rank.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

std::map<std::string, MethodSummary> CallLog::Summarize(absl::Time from, absl::Time to) const {
  std::map<std::string, std::vector<double>> latencies_ms;
  std::map<std::string, MethodSummary> summaries;
  {
    absl::MutexLock lock(&mutex_);
    for (const CallRecord& record : records_) {
      if (record.start < from || record.start >= to) continue;
      MethodSummary& summary = summaries[record.method];
      ++summary.calls;
      ++summary.by_code[record.code];
      latencies_ms[record.method].push_back(absl::ToDoubleMilliseconds(record.end - record.start));
    }
  }
  const double seconds = std::max(1e-9, absl::ToDoubleSeconds(to - from));
  for (auto& [method, summary] : summaries) {
    std::vector<double>& sorted = latencies_ms[method];
    std::sort(sorted.begin(), sorted.end());
    summary.requests_per_second = static_cast<double>(summary.calls) / seconds;
    summary.p50_ms = Quantile(sorted, 0.50);
    summary.p99_ms = Quantile(sorted, 0.99);
    summary.max_ms = sorted.empty() ? 0 : sorted.back();
  }
  return summaries;
}

std::string CallLog::Report(absl::Time from, absl::Time to) const {
  std::string text = absl::StrFormat("%-18s %9s %9s %9s %9s %9s  %s\n", "method", "calls", "req/s", "p50 ms",
                                     "p99 ms", "max ms", "status codes");
  for (const auto& [method, summary] : Summarize(from, to)) {
    std::string codes;
    for (const auto& [code, count] : summary.by_code) absl::StrAppend(&codes, CodeName(code), "=", count, " ");
    absl::StrAppend(&text, absl::StrFormat("%-18s %9d %9.1f %9.2f %9.2f %9.2f  %s\n", method, summary.calls,
                                           summary.requests_per_second, summary.p50_ms, summary.p99_ms,
                                           summary.max_ms, codes));
  }
  absl::MutexLock lock(&mutex_);
  absl::StrAppend(&text, "problems: ", problem_count_, problem_count_ > 0 ? " (first ones below)" : "", "\n");
  for (const std::string& problem : problems_) absl::StrAppend(&text, "  ", problem, "\n");
  return text;
}

std::string CodeName(grpc::StatusCode code) {
  // gRPC's codes are absl's canonical codes, names included.
  const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("code ", static_cast<int>(code)) : name;
}

}  // namespace convnet::load_testing
