// The client's connection to a convnet server: the channel (plaintext, TLS or
// mutual TLS), the one place that creates the ClientContext of every call
// (with its deadline and the bearer token), and the one place that turns a
// failed call into a message and an exit status.
#ifndef CONVNET_CLIENT_CONNECTION_H_
#define CONVNET_CLIENT_CONNECTION_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "convnet/v1/convnet.grpc.pb.h"

namespace convnet::client {

inline constexpr char kDefaultAddress[] = "localhost:50051";
inline constexpr char kAddressEnvironmentVariable[] = "CONVNET_ADDRESS";

// The address to use: --address when set, else $CONVNET_ADDRESS when set and
// non-empty, else kDefaultAddress.
std::string ResolveAddress();

// Where the server is and how to talk to it securely (docs/SECURITY.md).
// TLS is on when tls_ca_file or tls_cert_file is set.
struct ConnectionOptions {
  std::string address;
  std::string tls_ca_file;      // --tls_ca: PEM roots that verify the server ("" = gRPC's default roots)
  std::string tls_cert_file;    // --tls_cert: the client's certificate chain, for mutual TLS
  std::string tls_key_file;     // --tls_key: its private key
  std::string tls_server_name;  // --tls_server_name: the name the server's certificate must carry
  std::string auth_token_file;  // --auth_token_file: sent as "authorization: Bearer <token>"

  bool tls() const { return !tls_ca_file.empty() || !tls_cert_file.empty(); }
};

// The options given by the flags, with ResolveAddress() as the address.
ConnectionOptions ConnectionOptionsFromFlags();

class Connection {
 public:
  // Creates the channel to `options.address`: plaintext, or TLS when
  // options.tls(). Reads the files. INVALID_ARGUMENT naming the flag when a
  // file cannot be read or holds no PEM block of the right kind, when the
  // token is empty or not printable ASCII, or when a combination is
  // incomplete (--tls_cert without --tls_key or the reverse,
  // --tls_server_name without TLS). Connecting is lazy: an unreachable
  // server shows up as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectionOptions& options);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& address() const { return address_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  convnet::v1::ConvNet::Stub& stub() { return *stub_; }

  // Another channel to the same server with the same credentials (plus
  // --tls_server_name), e.g. for a separate TCP connection.
  std::shared_ptr<grpc::Channel> NewChannel(grpc::ChannelArguments arguments) const;

  // Every call's context comes from one of these; each carries the bearer
  // token when --auth_token_file is set. gRPC's call credentials
  // (AccessTokenCredentials) would refuse a plaintext channel, so the token
  // is added as metadata here, for plaintext and TLS alike.
  // A context for one call with the deadline now + --timeout.
  std::unique_ptr<grpc::ClientContext> NewCallContext() const;
  // The same with the deadline now + `timeout`.
  std::unique_ptr<grpc::ClientContext> NewCallContext(absl::Duration timeout) const;
  // A context without a deadline, for streams that last as long as a job.
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;

  // Prints why the call `what` (e.g. "Predict") failed to stderr and returns
  // the exit status: kExitUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED,
  // kExitRefused for every other code. The message always carries the gRPC
  // code's name and the server's message, and for UNAUTHENTICATED and
  // UNAVAILABLE a hint at the security flags.
  int ReportError(absl::string_view what, const grpc::Status& status) const;

 private:
  Connection() = default;

  std::string address_;
  bool tls_ = false;
  std::string tls_server_name_;
  std::string authorization_;  // "Bearer <token>", or "" = send none
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<convnet::v1::ConvNet::Stub> stub_;
};

// The name of a gRPC status code as in the gRPC documentation, e.g.
// "INVALID_ARGUMENT".
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_CONNECTION_H_
