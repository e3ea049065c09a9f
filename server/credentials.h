// The transport security of the server's listening port: plaintext by
// default, TLS with --tls_cert/--tls_key, mutual TLS with --tls_client_ca.
// The TLS files can be replaced while the server runs (Reload, on SIGHUP).
#ifndef CONVNET_SERVER_CREDENTIALS_H_
#define CONVNET_SERVER_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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

// How long after a successful Reload new connections may still be handed the
// previous certificate, key or client CA (gRPC's certificate provider picks
// up the replacement on its next refresh).
inline constexpr absl::Duration kTlsReloadDelay = absl::Seconds(1);

class MemoryFile;

// The credentials of the listening port and the TLS material behind them.
//
// With TLS, gRPC reads the certificate, key and client CA through a
// grpc::experimental::FileWatcherCertificateProvider, not from the files the
// flags name but from private in-memory copies (memfd, read through
// /proc/self/fd) that only Create and a successful Reload write. So a file
// that is missing, half-written or wrong on disk never reaches a handshake,
// and a rotation takes effect on Reload, not whenever the files change.
class ServerTransportSecurity {
 public:
  // Reads and checks the files. Plaintext (grpc::InsecureServerCredentials)
  // when no file is set; otherwise TLS with the certificate chain and key,
  // and, with a client CA, clients must present a certificate that CA signed
  // (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
  // INVALID_ARGUMENT naming the flag when a combination is incomplete
  // (above), a file cannot be read, a file is not PEM of the expected kind (a
  // certificate in --tls_cert and --tls_client_ca, an unencrypted private key
  // in --tls_key), or the key is not the private key of the certificate.
  // INTERNAL when the in-memory copies cannot be made.
  static absl::StatusOr<std::unique_ptr<ServerTransportSecurity>> Create(const ServerTlsFiles& files);

  ~ServerTransportSecurity();
  ServerTransportSecurity(const ServerTransportSecurity&) = delete;
  ServerTransportSecurity& operator=(const ServerTransportSecurity&) = delete;

  // For ServerBuilder::AddListeningPort; shared with the gRPC server.
  const std::shared_ptr<grpc::ServerCredentials>& credentials() const { return credentials_; }

  bool tls() const { return files_.enabled(); }

  // Reads and checks the three files again, as Create does. When all pass,
  // connections accepted from kTlsReloadDelay on present the new
  // certificate chain and verify clients against the new client CA
  // (connections already open keep theirs); returns whether any of the files'
  // contents changed. On any error nothing changes (the previous certificate,
  // key and CA stay in force) and the error is returned as Create returns it.
  // FAILED_PRECONDITION when the port is plaintext. Safe to call while the
  // server serves; concurrent calls are serialised.
  absl::StatusOr<bool> Reload();

 private:
  explicit ServerTransportSecurity(ServerTlsFiles files);

  const ServerTlsFiles files_;
  absl::Mutex reload_mu_;
  // Private key then certificate chain, in one file so that a reader takes
  // both from the same version; and the client CA ("" = no mutual TLS).
  std::unique_ptr<MemoryFile> identity_ ABSL_GUARDED_BY(reload_mu_);
  std::unique_ptr<MemoryFile> client_ca_ ABSL_GUARDED_BY(reload_mu_);
  std::shared_ptr<grpc::ServerCredentials> credentials_;
};

}  // namespace convnet::server

#endif  // CONVNET_SERVER_CREDENTIALS_H_
