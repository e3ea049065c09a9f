// What the load tests' clients did: every call (method, status, start and end
// time), and the problems found in responses that came back OK. Thread-safe;
// summarised at the end (calls and errors per method, requests/s, latency
// percentiles, the first problems with their codes and messages).
#ifndef CONVNET_TESTS_LOAD_CALL_LOG_H_
#define CONVNET_TESTS_LOAD_CALL_LOG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace convnet::load_testing {

struct CallRecord {
  std::string method;  // "Predict", "GetGradients", ...
  grpc::StatusCode code = grpc::StatusCode::OK;
  absl::Time start;
  absl::Time end;
};

// Per method: calls by status code and the latency of every call.
struct MethodSummary {
  int64_t calls = 0;
  std::map<grpc::StatusCode, int64_t> by_code;
  double requests_per_second = 0;  // calls / the window given to Summarize
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

class CallLog {
 public:
  // How many problem descriptions are kept (all are counted).
  static constexpr int kKeptProblems = 20;

  // Records one finished call. A status whose code is not in the caller's
  // allowed set should also be reported with AddProblem, which keeps its text.
  void Record(const std::string& method, const grpc::Status& status, absl::Time start, absl::Time end);

  // Counts one problem (an unexpected status, a wrong response) and keeps its
  // description when fewer than kKeptProblems are kept.
  void AddProblem(const std::string& description);

  int64_t problem_count() const;
  std::vector<CallRecord> records() const;

  // Per method over the calls that started in [from, to).
  std::map<std::string, MethodSummary> Summarize(absl::Time from, absl::Time to) const;

  // A printable table of Summarize(from, to) followed by the problem count and
  // the kept problems.
  std::string Report(absl::Time from, absl::Time to) const;

 private:
  mutable absl::Mutex mutex_;
  std::vector<CallRecord> records_ ABSL_GUARDED_BY(mutex_);
  int64_t problem_count_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mutex_);
};

// "OK", "UNAVAILABLE", ... for a gRPC status code.
std::string CodeName(grpc::StatusCode code);

}  // namespace convnet::load_testing

#endif  // CONVNET_TESTS_LOAD_CALL_LOG_H_
