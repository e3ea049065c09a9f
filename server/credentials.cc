#include "server/credentials.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/flag_file.h"

namespace convnet::server {
namespace {

// Certificate chains and CA bundles are a few KiB; a system-wide CA bundle is
// about 200 KiB. Anything larger is the wrong file.
constexpr size_t kMaxPemBytes = 4 << 20;

// Reads a PEM file and checks that it holds a block whose label ends with
// `label` ("CERTIFICATE", "PRIVATE KEY"), so that swapped or wrong files are
// reported with the flag that named them rather than as a failed handshake.
absl::StatusOr<std::string> ReadPem(absl::string_view flag, const std::string& path, absl::string_view label,
                                    absl::string_view expected) {
  absl::StatusOr<std::string> pem = ReadFlagFile(flag, path, kMaxPemBytes);
  if (!pem.ok()) return pem.status();
  bool found = false;
  for (size_t at = pem->find("-----BEGIN "); at != std::string::npos; at = pem->find("-----BEGIN ", at + 1)) {
    const size_t end = pem->find("-----", at + 11);
    if (end == std::string::npos) break;
    if (absl::EndsWith(absl::string_view(*pem).substr(at + 11, end - at - 11), label)) {
      found = true;
      break;
    }
  }
  if (!found) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM \"", label, "\" block; expected ", expected));
  }
  return pem;
}

}  // namespace

absl::Status ValidateServerTlsFiles(const ServerTlsFiles& files) {
  if (!files.cert_file.empty() && files.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert needs --tls_key (the certificate's private key)");
  }
  if (files.cert_file.empty() && !files.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_key needs --tls_cert (the certificate of that key)");
  }
  if (!files.client_ca_file.empty() && files.cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca (mutual TLS) needs --tls_cert and --tls_key: client certificates are checked only "
        "over TLS");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsFiles& files) {
  if (absl::Status valid = ValidateServerTlsFiles(files); !valid.ok()) return valid;
  if (!files.enabled()) return grpc::InsecureServerCredentials();

  absl::StatusOr<std::string> cert =
      ReadPem("--tls_cert", files.cert_file, "CERTIFICATE", "the server's certificate chain");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("--tls_key", files.key_file, "PRIVATE KEY", "an unencrypted private key");
  if (!key.ok()) return key.status();
  if (absl::StrContains(*key, "ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key: ", files.key_file, " is encrypted; the server needs it unencrypted (protect it with file "
        "permissions instead: readable by the server's user only)"));
  }

  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> client_ca = ReadPem("--tls_client_ca", files.client_ca_file, "CERTIFICATE",
                                                    "the CA certificates that sign client certificates");
    if (!client_ca.ok()) return client_ca.status();
    options.pem_root_certs = *std::move(client_ca);
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace convnet::server
