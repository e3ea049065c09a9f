// Bearer-token authorization of the ConvNet service (--auth_token_file,
// --auth_all). The server holds one shared secret, read from a file at start
// and again on Reload (SIGHUP); a call that needs it must carry the metadata
// `authorization: Bearer <token>`.
//
// Which calls need the token (docs/SECURITY.md):
//   - always: Train, CancelTrainingJob and GetGradients (they change state or
//     use the server as an oracle on its stored parameters), and GetModel
//     when it exports parameters (include_parameters);
//   - with --auth_all: every ConvNet method.
// The standard health service never does (it is not part of ConvNet), so that
// load balancers and container health checks need no secret.
#ifndef CONVNET_SERVER_AUTH_H_
#define CONVNET_SERVER_AUTH_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "server/server_stats.h"

namespace convnet::server {

// The token's accepted length in bytes, after the trailing newline is removed.
// 16 bytes is the least that resists guessing (e.g. `openssl rand -hex 16`
// gives 32); 1024 bounds the constant-time comparison.
inline constexpr size_t kMinTokenBytes = 16;
inline constexpr size_t kMaxTokenBytes = 1024;

// The metadata key, as gRPC hands it over (keys are lower case on the wire).
inline constexpr char kAuthorizationKey[] = "authorization";

// Whether a call of `method` needs the token. `exports_parameters` is true for
// a GetModel with include_parameters.
bool RequiresToken(RpcMethod method, bool exports_parameters, bool auth_all);

class Authorizer {
 public:
  // Reads the token from `token_file`: the whole file, minus one trailing
  // "\n" or "\r\n". INVALID_ARGUMENT naming --auth_token_file when the file
  // cannot be read, or the token is empty, shorter than kMinTokenBytes, longer
  // than kMaxTokenBytes, or holds a character that is not printable ASCII or
  // is a space (a metadata value could not carry it).
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromTokenFile(const std::string& token_file, bool auth_all);

  // An authorizer for `token` itself, validated as above. It has no file to
  // reload.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromToken(std::string token, bool auth_all);

  // Reads the token file again and, when the token in it is valid (as for
  // FromTokenFile), makes it the only accepted token from the next check on;
  // returns whether it differs from the previous one. On any error the
  // previous token stays in force: INVALID_ARGUMENT as for FromTokenFile;
  // FAILED_PRECONDITION for an authorizer made by FromToken. Safe to call
  // while calls are being checked.
  absl::StatusOr<bool> Reload();

  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // OK when the call of `method` needs no token, or carries exactly one
  // `authorization` header of the form "Bearer <token>" (scheme case-
  // insensitive) whose token equals ours. UNAUTHENTICATED otherwise, with a
  // message that says what was wrong (no header, more than one, not a Bearer
  // token, wrong token) and never repeats what the client sent. The token is
  // compared in constant time. No allocation unless the call is refused; a
  // call that needs no token takes no lock.
  absl::Status Check(const grpc::ServerContextBase& context, RpcMethod method,
                     bool exports_parameters = false) const;

  // The same check on the values of the call's `authorization` headers
  // (`count` of them, `value` the first), for callers without a context.
  absl::Status CheckHeader(RpcMethod method, size_t count, absl::string_view value) const;

  bool auth_all() const { return auth_all_; }

 private:
  Authorizer(std::string token, std::string token_file, bool auth_all)
      : token_file_(std::move(token_file)), auth_all_(auth_all), token_(std::move(token)) {}

  const std::string token_file_;  // "" = made by FromToken
  const bool auth_all_;
  mutable absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
};

// True when `a` and `b` are equal. The time taken depends on neither the
// contents nor the position of a difference, only on kMaxTokenBytes: every
// byte position up to kMaxTokenBytes is compared, without an early exit.
// Inputs longer than kMaxTokenBytes compare unequal.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_AUTH_H_
