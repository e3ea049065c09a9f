// The in-process service the request fuzzer calls: a ConvNetService on a small
// model repository (model "tiny", versions 1 (K = 1) and 2 (K = 2)) and a small
// server-side dataset "tiny" (20 training, 10 test examples), without gRPC's
// network layer (a gRPC server in the process, called over its in-process
// channel). Shared by request_fuzzer.cc and make_seeds.cc, which builds the
// seed requests against the same names.
#ifndef CONVNET_TESTS_FUZZ_FUZZ_SERVICE_H_
#define CONVNET_TESTS_FUZZ_FUZZ_SERVICE_H_

#include <cstdint>
#include <string>

#include "convnet/v1/convnet.pb.h"

namespace convnet::fuzz {

inline constexpr const char* kModelName = "tiny";
inline constexpr const char* kDatasetName = "tiny";
inline constexpr size_t kTrainExamples = 20;
inline constexpr size_t kTestExamples = 10;
inline constexpr size_t kMaxBatch = 16;

// The RPCs the request fuzzer reaches; the first input byte picks one
// (modulo kRpcCount), the rest is the serialized request message.
enum class Rpc : uint8_t {
  kPredict = 0,
  kTrain,
  kGetTrainingJob,
  kListTrainingJobs,
  kCancelTrainingJob,
  kGetGradients,
  kListModels,
  kGetModel,
  kGetServerStats,
  kWatchTrainingJob,
};
inline constexpr int kRpcCount = 10;

// A WatchTrainingJob (or GetTrainingJob) job_id that the fuzzer replaces with
// the id of the last job it submitted, so that watching reaches a real job's
// replay (job ids hold the server's start time: no input could guess one).
inline constexpr const char* kLastJobId = "@last";

// A fuzzer input: the selector byte followed by the serialized `request`.
inline std::string FuzzInput(Rpc rpc, const google::protobuf::Message& request) {
  return std::string(1, static_cast<char>(rpc)) + request.SerializeAsString();
}

}  // namespace convnet::fuzz

#endif  // CONVNET_TESTS_FUZZ_FUZZ_SERVICE_H_
