#include "server/credentials.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "openssl/bio.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/x509.h"
#include "core/file_util.h"

namespace convnet::server {

// A file that lives in memory only (memfd_create), for gRPC to read through
// /proc/self/fd/<n>. Commit swaps in new contents at once (dup3 onto the same
// descriptor number): a reader opens either the old or the new contents,
// never a mixture. Each version gets its own modification time (1, 2, 3, ...
// seconds after the epoch), because FileWatcherCertificateProvider compares
// the time before and after it reads and reads again when it changed.
class MemoryFile {
 public:
  // INTERNAL naming `name` when the file cannot be made.
  static absl::StatusOr<std::unique_ptr<MemoryFile>> Create(const std::string& name, absl::string_view contents) {
    absl::StatusOr<int> fd = Write(name, contents, 1);
    if (!fd.ok()) return fd.status();
    return std::unique_ptr<MemoryFile>(new MemoryFile(name, *fd));
  }

  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  std::string path() const { return absl::StrCat("/proc/self/fd/", fd_); }

  // Writes the next version of the contents into a new memfd and returns its
  // descriptor, for Commit; the file itself is unchanged. INTERNAL when it
  // cannot be written.
  absl::StatusOr<int> Stage(absl::string_view contents) const { return Write(name_, contents, version_ + 1); }

  // Makes the staged version (the descriptor Stage returned, which this takes
  // over) the file's contents.
  void Commit(int staged) {
    while (dup3(staged, fd_, O_CLOEXEC) < 0 && errno == EINTR) {
    }
    close(staged);
    ++version_;
  }

 private:
  MemoryFile(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}

  // A new memfd holding `contents`, modified at `version` seconds.
  static absl::StatusOr<int> Write(const std::string& name, absl::string_view contents, int64_t version) {
    const int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
    if (fd < 0) return StorageError(LastError(), "cannot create", name);
    for (size_t written = 0; written < contents.size();) {
      const ssize_t n = write(fd, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::error_code error = LastError();
        close(fd);
        return StorageError(error, "cannot write", name);
      }
      written += static_cast<size_t>(n);
    }
    const timespec times[2] = {{static_cast<time_t>(version), 0}, {static_cast<time_t>(version), 0}};
    if (futimens(fd, times) != 0) {
      const std::error_code error = LastError();
      close(fd);
      return StorageError(error, "cannot set the time of", name);
    }
    return fd;
  }

  const std::string name_;
  const int fd_;
  int64_t version_ = 1;
};

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

// OpenSSL objects freed on scope exit.
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioDeleter> ReadOnlyBio(absl::string_view pem) {
  return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// INVALID_ARGUMENT naming both flags unless `key` is the private key of the
// first (leaf) certificate of `chain`. gRPC would only find out in every
// handshake, which then fails.
absl::Status CheckKeyMatchesCertificate(const ServerTlsFiles& files, absl::string_view chain, absl::string_view key) {
  std::unique_ptr<X509, X509Deleter> leaf(PEM_read_bio_X509(ReadOnlyBio(chain).get(), nullptr, nullptr, nullptr));
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert: ", files.cert_file, ": the first certificate cannot be parsed"));
  }
  std::unique_ptr<EVP_PKEY, KeyDeleter> private_key(
      PEM_read_bio_PrivateKey(ReadOnlyBio(key).get(), nullptr, nullptr, nullptr));
  if (private_key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_key: ", files.key_file, ": the private key cannot be parsed"));
  }
  if (X509_check_private_key(leaf.get(), private_key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_key: ", files.key_file,
                                                   " is not the private key of the certificate in --tls_cert ",
                                                   files.cert_file));
  }
  return absl::OkStatus();
}

// What gRPC is handed: the private key followed by the certificate chain (gRPC
// takes the key block and the certificate blocks from the same text), and the
// client CA certificates ("" = none).
struct TlsMaterial {
  std::string identity;
  std::string client_ca;

  bool operator==(const TlsMaterial&) const = default;
};

absl::StatusOr<TlsMaterial> ReadTlsMaterial(const ServerTlsFiles& files) {
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
  if (absl::Status match = CheckKeyMatchesCertificate(files, *cert, *key); !match.ok()) return match;
  TlsMaterial material;
  material.identity = absl::StrCat(*key, absl::EndsWith(*key, "\n") ? "" : "\n", *cert);
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> client_ca = ReadPem("--tls_client_ca", files.client_ca_file, "CERTIFICATE",
                                                    "the CA certificates that sign client certificates");
    if (!client_ca.ok()) return client_ca.status();
    std::unique_ptr<X509, X509Deleter> first(
        PEM_read_bio_X509(ReadOnlyBio(*client_ca).get(), nullptr, nullptr, nullptr));
    if (first == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls_client_ca: ", files.client_ca_file, ": the first certificate cannot be parsed"));
    }
    material.client_ca = *std::move(client_ca);
  }
  return material;
}

// The contents gRPC currently reads ("" when unreadable).
std::string ReadAll(const std::string& path) { return ReadFile(path).value_or(""); }

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

ServerTransportSecurity::ServerTransportSecurity(ServerTlsFiles files) : files_(std::move(files)) {}

ServerTransportSecurity::~ServerTransportSecurity() = default;

absl::StatusOr<std::unique_ptr<ServerTransportSecurity>> ServerTransportSecurity::Create(const ServerTlsFiles& files) {
  if (absl::Status valid = ValidateServerTlsFiles(files); !valid.ok()) return valid;
  std::unique_ptr<ServerTransportSecurity> security(new ServerTransportSecurity(files));
  if (!files.enabled()) {
    security->credentials_ = grpc::InsecureServerCredentials();
    return security;
  }
  absl::StatusOr<TlsMaterial> material = ReadTlsMaterial(files);
  if (!material.ok()) return material.status();

  absl::MutexLock lock(&security->reload_mu_);
  absl::StatusOr<std::unique_ptr<MemoryFile>> identity = MemoryFile::Create("tls-identity", material->identity);
  if (!identity.ok()) return identity.status();
  security->identity_ = *std::move(identity);
  std::string client_ca_path;
  if (!material->client_ca.empty()) {
    absl::StatusOr<std::unique_ptr<MemoryFile>> client_ca = MemoryFile::Create("tls-client-ca", material->client_ca);
    if (!client_ca.ok()) return client_ca.status();
    security->client_ca_ = *std::move(client_ca);
    client_ca_path = security->client_ca_->path();
  }
  // The provider reads the copies now, and again every kTlsReloadDelay
  // (which costs a stat and a read of a few KiB of memory).
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      security->identity_->path(), security->identity_->path(), client_ca_path,
      static_cast<unsigned int>(absl::ToInt64Seconds(kTlsReloadDelay)));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (security->client_ca_ != nullptr) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  security->credentials_ = grpc::experimental::TlsServerCredentials(options);
  return security;
}

absl::StatusOr<bool> ServerTransportSecurity::Reload() {
  if (!files_.enabled()) return absl::FailedPreconditionError("the port is plaintext (no --tls_cert)");
  absl::StatusOr<TlsMaterial> material = ReadTlsMaterial(files_);
  if (!material.ok()) return material.status();
  absl::MutexLock lock(&reload_mu_);
  const TlsMaterial current{ReadAll(identity_->path()), client_ca_ == nullptr ? "" : ReadAll(client_ca_->path())};
  if (*material == current) return false;
  // Both new versions are written before either is swapped in.
  absl::StatusOr<int> identity = identity_->Stage(material->identity);
  if (!identity.ok()) return identity.status();
  if (client_ca_ != nullptr) {
    absl::StatusOr<int> client_ca = client_ca_->Stage(material->client_ca);
    if (!client_ca.ok()) {
      close(*identity);
      return client_ca.status();
    }
    client_ca_->Commit(*client_ca);
  }
  identity_->Commit(*identity);
  return true;
}

}  // namespace convnet::server
