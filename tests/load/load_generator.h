// Closed-loop clients for the load tests: N threads over M gRPC channels (each
// its own TCP connection), each looping a random mix of Predict (1..256
// reference images, the latest version or a pinned one it has seen) and
// GetGradients (a few labelled reference images, cross-entropy). Every call
// has a deadline and goes into the CallLog; a status outside the allowed set
// and an OK response that differs from what its version computes
// (response_checks.h) are logged as problems.
#ifndef CONVNET_TESTS_LOAD_LOAD_GENERATOR_H_
#define CONVNET_TESTS_LOAD_LOAD_GENERATOR_H_

#include <atomic>
#include <functional>
#include <map>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "call_log.h"
#include "convnet/v1/convnet.grpc.pb.h"
#include "grpcpp/channel.h"
#include "reference_models.h"

namespace convnet::load_testing {

struct LoadOptions {
  std::string target;  // "127.0.0.1:<port>"
  std::string model_name;
  int clients = 64;
  int channels = 4;
  absl::Duration call_timeout = absl::Seconds(30);
  int max_predict_images = 256;
  int max_gradient_examples = 8;
  double predict_share = 0.75;  // the rest are GetGradients
  double latest_share = 0.5;    // calls for version 0; the rest pin a version seen so far
  // Versions known to exist before the load starts (pinned calls pick among
  // these and the ones responses name later). Must not be empty.
  std::vector<int64_t> initial_versions;
  // Status codes that are not problems (OK always is one).
  std::set<grpc::StatusCode> allowed_codes = {grpc::StatusCode::OK};
  // A client pauses this long after a non-OK status, so that a server that is
  // gone is not hammered with connection attempts in a tight loop.
  absl::Duration pause_after_error = absl::Milliseconds(20);
};

class LoadGenerator {
 public:
  // `reference` and `log` must outlive this object.
  LoadGenerator(LoadOptions options, ReferenceModels& reference, CallLog& log);
  ~LoadGenerator();  // Stop()

  // Starts the client threads; each runs until Stop().
  void Start();
  // Asks every client to stop after its current call and joins them. Calls
  // are bounded by their deadline, so this returns within call_timeout.
  void Stop();

  // The versions pinned calls may use: the initial ones, those added with
  // AddVersion and every version a response named, ascending.
  std::vector<int64_t> VersionsSeen() const;
  // Lets pinned calls use `version` from now on (e.g. one a job published).
  void AddVersion(int64_t version);
  // Per version, the OK calls (Predict and GetGradients) it answered.
  std::map<int64_t, int64_t> AnsweredByVersion() const;
  // Images and examples whose answers were compared with the reference.
  int64_t images_checked() const { return images_checked_.load(); }

 private:
  void RunClient(int client, v1::ConvNet::Stub& stub);
  int64_t PickVersion(uint64_t random) const;
  // AddVersion, and counts one OK call answered by `version`.
  void NoteAnswer(int64_t version);
  // Records the call; reports a status outside the allowed set as a problem.
  // True when the response is OK and should be checked.
  bool Finish(const std::string& method, const std::string& request_text, const grpc::Status& status,
              absl::Time start);
  void CheckAgainstReference(const std::string& method, int64_t version, const std::string& request_text,
                             const std::function<absl::Status(const VersionReference&)>& check);

  const LoadOptions options_;
  ReferenceModels& reference_;
  CallLog& log_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::ConvNet::Stub>> stubs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> images_checked_{0};
  mutable absl::Mutex mutex_;
  std::vector<int64_t> versions_ ABSL_GUARDED_BY(mutex_);
  std::map<int64_t, int64_t> answered_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace convnet::load_testing

#endif  // CONVNET_TESTS_LOAD_LOAD_GENERATOR_H_
