// The client's connection to a convnet server, and the one place that turns a
// failed call into a message and an exit status.
#ifndef CONVNET_CLIENT_CONNECTION_H_
#define CONVNET_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convnet/v1/convnet.grpc.pb.h"

namespace convnet::client {

inline constexpr char kDefaultAddress[] = "localhost:50051";
inline constexpr char kAddressEnvironmentVariable[] = "CONVNET_ADDRESS";

// The address to use: --address when set, else $CONVNET_ADDRESS when set and
// non-empty, else kDefaultAddress.
std::string ResolveAddress();

class Connection {
 public:
  // Creates an insecure channel to `address`. Connecting is lazy: an
  // unreachable server shows up as UNAVAILABLE on the first call.
  explicit Connection(std::string address);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& address() const { return address_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  convnet::v1::ConvNet::Stub& stub() { return *stub_; }

  // A context for one call with the deadline now + --timeout.
  std::unique_ptr<grpc::ClientContext> NewCallContext() const;
  // A context without a deadline, for streams that last as long as a job.
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;

  // Prints why the call `what` (e.g. "Predict") failed to stderr and returns
  // the exit status: kExitUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED,
  // kExitRefused for every other code. The message always carries the gRPC
  // code's name and the server's message.
  int ReportError(absl::string_view what, const grpc::Status& status) const;

 private:
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<convnet::v1::ConvNet::Stub> stub_;
};

// The name of a gRPC status code as in the gRPC documentation, e.g.
// "INVALID_ARGUMENT".
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_CONNECTION_H_
