// Request bytes that do not parse as the method's request message: every
// ConvNet method answers INVALID_ARGUMENT with a message naming the method and
// the message type, and the call is counted in GetServerStats like any other.
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api_fixture.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace convnet::server_testing {
namespace {

struct Method {
  const char* name;     // e.g. "Predict"
  const char* request;  // its request message, e.g. "PredictRequest"
};

constexpr Method kMethods[] = {
    {"Predict", "PredictRequest"},
    {"Train", "TrainRequest"},
    {"GetTrainingJob", "GetTrainingJobRequest"},
    {"ListTrainingJobs", "ListTrainingJobsRequest"},
    {"CancelTrainingJob", "CancelTrainingJobRequest"},
    {"WatchTrainingJob", "WatchTrainingJobRequest"},
    {"GetGradients", "GetGradientsRequest"},
    {"ListModels", "ListModelsRequest"},
    {"GetModel", "GetModelRequest"},
    {"GetServerStats", "GetServerStatsRequest"},
};

// A field tag whose varint never ends: no message parses from it.
constexpr char kUndecodable[] = "\xff\xff\xff";

class UndecodableRequestTest : public ApiTest, public ::testing::WithParamInterface<Method> {
 protected:
  // Calls `method` with `bytes` as the request, through a generic stub (no
  // generated code checks the bytes on the way).
  grpc::Status CallRaw(const std::string& method, const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    grpc::GenericStub stub(server_->channel());
    auto context = Context();
    stub.UnaryCall(context.get(), "/convnet.v1.ConvNet/" + method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status call_status) {
                     status = std::move(call_status);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }

  int64_t InvalidArgumentCount(const std::string& method) {
    v1::GetServerStatsResponse stats;
    const grpc::Status status = stub().GetServerStats(Context().get(), v1::GetServerStatsRequest(), &stats);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const v1::MethodStats& counted : stats.methods()) {
      if (counted.method() != method) continue;
      for (const v1::StatusCodeCount& code : counted.errors_by_code()) {
        if (code.code_name() == "INVALID_ARGUMENT") return code.count();
      }
    }
    return 0;
  }
};

TEST_P(UndecodableRequestTest, IsInvalidArgumentNamingTheMethodAndTheMessageAndIsCounted) {
  const Method method = GetParam();
  const grpc::Status status = CallRaw(method.name, std::string(kUndecodable, sizeof(kUndecodable) - 1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(), std::string(method.name) + ": the request is not a valid convnet.v1." +
                                        method.request + " (3 bytes)");
  // A call is counted when it ends on the server, which for a stream
  // (WatchTrainingJob) may be a moment after its client has the status.
  int64_t counted = InvalidArgumentCount(method.name);
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60); counted == 0 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(2));
    counted = InvalidArgumentCount(method.name);
  }
  EXPECT_EQ(counted, 1);
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, UndecodableRequestTest, ::testing::ValuesIn(kMethods),
                         [](const ::testing::TestParamInfo<Method>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace convnet::server_testing
