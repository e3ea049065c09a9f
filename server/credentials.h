// The transport security of the server's listening port: plaintext by
// default, TLS with --tls_cert/--tls_key, mutual TLS with --tls_client_ca.
#ifndef CONVNET_SERVER_CREDENTIALS_H_
#define CONVNET_SERVER_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace convnet::server {

// Paths of PEM files; "" = not set.
struct ServerTlsFiles {
  std::string cert_file;       // --tls_cert: the server's certificate chain, leaf first
  std::string key_file;        // --tls_key: the private key of that certificate
  std::string client_ca_file;  // --tls_client_ca: CA certificates that sign accepted client certificates

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// INVALID_ARGUMENT naming the flags when the combination is incomplete:
// --tls_cert without --tls_key or the reverse, --tls_client_ca without
// --tls_cert. Does not touch the files.
absl::Status ValidateServerTlsFiles(const ServerTlsFiles& files);

// The credentials for the listening port: grpc::InsecureServerCredentials()
// when no file is set; otherwise TLS with the certificate and key read from
// the files, and, with a client CA, clients must present a certificate that
// CA signed (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
// INVALID_ARGUMENT naming the flag when a combination is incomplete (above),
// a file cannot be read, or a file is not PEM of the expected kind (a
// certificate in --tls_cert and --tls_client_ca, a private key in --tls_key).
// Whether the key matches the certificate is checked by gRPC when the port
// is opened.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsFiles& files);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_CREDENTIALS_H_
