#include "client/connection.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "core/file_util.h"

// The security flags belong to the connection, which every command has.
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate(s) that verify the server's certificate; implies TLS");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain for mutual TLS (with --tls_key); implies TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the server's certificate must carry, when it differs from --address's host "
          "(e.g. localhost when connecting to 127.0.0.1)");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding the server's bearer token, sent as \"authorization: Bearer <token>\" on every call");

namespace convnet::client {
namespace {

// CA bundles are up to a few hundred KiB; anything larger is the wrong file.
constexpr size_t kMaxFileBytes = 4 << 20;
// The server accepts tokens of at most 1024 bytes.
constexpr size_t kMaxTokenBytes = 1024;

// A PEM file that must hold a block whose label ends with `label`.
absl::StatusOr<std::string> ReadPem(absl::string_view flag, const std::string& path, absl::string_view label) {
  absl::StatusOr<std::string> pem = ReadFlagFile(flag, path, kMaxFileBytes);
  if (!pem.ok()) return pem.status();
  if (!absl::StrContains(*pem, absl::StrCat(label, "-----"))) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " holds no PEM \"", label, "\" block"));
  }
  return pem;
}

// The token file: the whole file minus one trailing newline; printable ASCII
// without spaces (what a metadata value can carry).
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  absl::StatusOr<std::string> token = ReadFlagFile("--auth_token_file", path, kMaxTokenBytes + 2);
  if (!token.ok()) return token.status();
  if (absl::EndsWith(*token, "\r\n")) {
    token->resize(token->size() - 2);
  } else if (absl::EndsWith(*token, "\n")) {
    token->resize(token->size() - 1);
  }
  if (token->empty() || token->size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--auth_token_file: the token in ", path, " must be 1..",
                                                   kMaxTokenBytes, " bytes, got ", token->size()));
  }
  for (char c : *token) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--auth_token_file: the token in ", path, " may hold only printable ASCII characters without spaces"));
    }
  }
  return token;
}

}  // namespace

ConnectionOptions ConnectionOptionsFromFlags() {
  ConnectionOptions options;
  options.address = ResolveAddress();
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  return options;
}

std::string ResolveAddress() {
  std::string address = absl::GetFlag(FLAGS_address);
  if (!address.empty()) return address;
  const char* from_environment = std::getenv(kAddressEnvironmentVariable);
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return kDefaultAddress;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options) {
  if (!options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert needs --tls_key (the certificate's private key)");
  }
  if (options.tls_cert_file.empty() && !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_key needs --tls_cert (the certificate of that key)");
  }
  if (!options.tls() && !options.tls_server_name.empty()) {
    return absl::InvalidArgumentError("--tls_server_name needs TLS: set --tls_ca (or --tls_cert for mutual TLS)");
  }
  std::unique_ptr<Connection> connection(new Connection());
  connection->address_ = options.address;
  connection->tls_ = options.tls();
  connection->tls_server_name_ = options.tls_server_name;
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadToken(options.auth_token_file);
    if (!token.ok()) return token.status();
    connection->authorization_ = absl::StrCat("Bearer ", *token);
  }
  if (!options.tls()) {
    connection->credentials_ = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> roots = ReadPem("--tls_ca", options.tls_ca_file, "CERTIFICATE");
      if (!roots.ok()) return roots.status();
      ssl.pem_root_certs = *std::move(roots);
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPem("--tls_cert", options.tls_cert_file, "CERTIFICATE");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadPem("--tls_key", options.tls_key_file, "PRIVATE KEY");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    connection->credentials_ = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  // Responses such as GetGradients with deltas or a model export grow with K
  // and the batch; the server bounds them with its --max_message_bytes.
  arguments.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  arguments.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  connection->channel_ = connection->NewChannel(arguments);
  connection->stub_ = convnet::v1::ConvNet::NewStub(connection->channel_);
  return connection;
}

std::shared_ptr<grpc::Channel> Connection::NewChannel(grpc::ChannelArguments arguments) const {
  if (!tls_server_name_.empty()) arguments.SetSslTargetNameOverride(tls_server_name_);
  return grpc::CreateCustomChannel(address_, credentials_, arguments);
}

std::unique_ptr<grpc::ClientContext> Connection::NewCallContext() const {
  return NewCallContext(absl::GetFlag(FLAGS_timeout));
}

std::unique_ptr<grpc::ClientContext> Connection::NewCallContext(absl::Duration timeout) const {
  std::unique_ptr<grpc::ClientContext> context = NewStreamContext();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

std::unique_ptr<grpc::ClientContext> Connection::NewStreamContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
  return context;
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
                    "Is convnet_server running there? Set --address or %s to point elsewhere.\n%s",
                    what, address_, code, status.error_message(), kAddressEnvironmentVariable,
                    tls_ ? "With TLS, also check --tls_ca, --tls_server_name and, for mutual TLS, "
                           "--tls_cert/--tls_key; a plaintext server needs none of them.\n"
                         : "If the server uses TLS, pass --tls_ca (and --tls_cert/--tls_key for mutual TLS).\n");
      return kExitUnreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      absl::FPrintF(stderr,
                    "error: %s: no answer from the convnet server at %s within %s (%s: %s)\n"
                    "Raise --timeout if the call is legitimately slow.\n",
                    what, address_, absl::FormatDuration(absl::GetFlag(FLAGS_timeout)), code,
                    status.error_message());
      return kExitUnreachable;
    case grpc::StatusCode::UNAUTHENTICATED:
      absl::FPrintF(stderr, "error: %s: the server at %s refused: %s: %s\n%s", what, address_, code,
                    status.error_message(),
                    authorization_.empty() ? "Pass the server's token with --auth_token_file.\n"
                                           : "Check that --auth_token_file holds the server's current token.\n");
      return kExitRefused;
    default:
      absl::FPrintF(stderr, "error: %s: the server at %s refused: %s: %s\n", what, address_, code,
                    status.error_message());
      return kExitRefused;
  }
}

}  // namespace convnet::client
