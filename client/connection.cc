#include "client/connection.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "client/exit_codes.h"
#include "client/flags.h"

namespace convnet::client {

std::string ResolveAddress() {
  std::string address = absl::GetFlag(FLAGS_address);
  if (!address.empty()) return address;
  const char* from_environment = std::getenv(kAddressEnvironmentVariable);
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return kDefaultAddress;
}

Connection::Connection(std::string address) : address_(std::move(address)) {
  grpc::ChannelArguments arguments;
  // Responses such as GetGradients with deltas or a model export grow with K
  // and the batch; the server bounds them with its --max_message_bytes.
  arguments.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  arguments.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), arguments);
  stub_ = convnet::v1::ConvNet::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> Connection::NewCallContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  return context;
}

std::unique_ptr<grpc::ClientContext> Connection::NewStreamContext() const {
  return std::make_unique<grpc::ClientContext>();
}

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's codes are numerically identical to absl's canonical codes.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int Connection::ReportError(absl::string_view what, const grpc::Status& status) const {
  const std::string code = StatusCodeName(status.error_code());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      absl::FPrintF(stderr,
                    "error: %s: cannot reach the convnet server at %s (%s: %s)\n"
                    "Is convnet_server running there? Set --address or %s to point elsewhere.\n",
                    what, address_, code, status.error_message(), kAddressEnvironmentVariable);
      return kExitUnreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      absl::FPrintF(stderr,
                    "error: %s: no answer from the convnet server at %s within %s (%s: %s)\n"
                    "Raise --timeout if the call is legitimately slow.\n",
                    what, address_, absl::FormatDuration(absl::GetFlag(FLAGS_timeout)), code,
                    status.error_message());
      return kExitUnreachable;
    default:
      absl::FPrintF(stderr, "error: %s: the server at %s refused: %s: %s\n", what, address_, code,
                    status.error_message());
      return kExitRefused;
  }
}

}  // namespace convnet::client
