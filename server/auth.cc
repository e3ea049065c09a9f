#include "server/auth.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"

namespace convnet::server {
namespace {

constexpr absl::string_view kBearerScheme = "Bearer ";

absl::Status ValidateToken(absl::string_view token) {
  if (token.empty()) {
    return absl::InvalidArgumentError("--auth_token_file: the token is empty");
  }
  if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--auth_token_file: the token must be ", kMinTokenBytes, "..",
                                                   kMaxTokenBytes, " bytes, got ", token.size(),
                                                   " (e.g. `openssl rand -hex 32`)"));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    // Printable ASCII without the space: what a metadata value can carry and
    // what "Bearer <token>" can delimit. The character itself is not shown.
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_token_file: the token may hold only printable ASCII characters without spaces; "
                       "byte ",
                       i, " is not one (only one trailing newline is removed)"));
    }
  }
  return absl::OkStatus();
}

// The token in `token_file`: the whole file minus one trailing newline,
// validated; INVALID_ARGUMENT naming the flag and the file otherwise.
absl::StatusOr<std::string> ReadTokenFile(const std::string& token_file) {
  // Room for the longest token and a "\r\n".
  absl::StatusOr<std::string> token = ReadFlagFile("--auth_token_file", token_file, kMaxTokenBytes + 2);
  if (!token.ok()) return token.status();
  if (absl::EndsWith(*token, "\r\n")) {
    token->resize(token->size() - 2);
  } else if (absl::EndsWith(*token, "\n")) {
    token->resize(token->size() - 1);
  }
  if (absl::Status valid = ValidateToken(*token); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(valid.message(), " (file ", token_file, ")"));
  }
  return token;
}

}  // namespace

bool RequiresToken(RpcMethod method, bool exports_parameters, bool auth_all) {
  if (auth_all) return true;
  switch (method) {
    case RpcMethod::kTrain:
    case RpcMethod::kCancelTrainingJob:
    case RpcMethod::kGetGradients:
      return true;
    case RpcMethod::kGetModel:
      return exports_parameters;
    default:
      return false;
  }
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Accumulate every difference with OR, over a fixed number of positions.
  // A byte past the end of a string counts as 0; the lengths are compared
  // separately, so "ab" and "ab\0" still differ.
  unsigned difference = a.size() == b.size() ? 0u : 1u;
  if (a.size() > kMaxTokenBytes || b.size() > kMaxTokenBytes) difference = 1u;
  for (size_t i = 0; i < kMaxTokenBytes; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned>(x ^ y);
  }
  return difference == 0;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromTokenFile(const std::string& token_file,
                                                                      bool auth_all) {
  absl::StatusOr<std::string> token = ReadTokenFile(token_file);
  if (!token.ok()) return token.status();
  return std::unique_ptr<Authorizer>(new Authorizer(*std::move(token), token_file, auth_all));
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromToken(std::string token, bool auth_all) {
  if (absl::Status valid = ValidateToken(token); !valid.ok()) return valid;
  return std::unique_ptr<Authorizer>(new Authorizer(std::move(token), "", auth_all));
}

absl::StatusOr<bool> Authorizer::Reload() {
  if (token_file_.empty()) return absl::FailedPreconditionError("the token was not read from a file");
  absl::StatusOr<std::string> token = ReadTokenFile(token_file_);
  if (!token.ok()) return token.status();
  absl::MutexLock lock(&mu_);
  if (*token == token_) return false;
  token_ = *std::move(token);
  return true;
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& context, RpcMethod method,
                               bool exports_parameters) const {
  if (!RequiresToken(method, exports_parameters, auth_all_)) return absl::OkStatus();
  // equal_range on the multimap: no copy, no allocation.
  const auto [first, last] = context.client_metadata().equal_range(kAuthorizationKey);
  size_t count = 0;
  for (auto it = first; it != last; ++it) ++count;
  const absl::string_view value =
      count == 0 ? absl::string_view() : absl::string_view(first->second.data(), first->second.size());
  return CheckHeader(method, count, value);
}

absl::Status Authorizer::CheckHeader(RpcMethod method, size_t count, absl::string_view value) const {
  const absl::string_view rpc = RpcMethodName(method);
  if (count == 0) {
    return absl::UnauthenticatedError(
        absl::StrCat(rpc, " needs a token: send the metadata \"authorization: Bearer <token>\" "
                          "(convnet_client --auth_token_file)"));
  }
  if (count > 1) {
    // Which one would count is ambiguous; a proxy may have added one.
    return absl::UnauthenticatedError(
        absl::StrCat(rpc, ": the call carries ", count, " authorization headers; send exactly one"));
  }
  if (value.size() < kBearerScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearerScheme.size()), kBearerScheme)) {
    return absl::UnauthenticatedError(
        absl::StrCat(rpc, ": the authorization header is not of the form \"Bearer <token>\""));
  }
  bool valid = false;
  {
    absl::ReaderMutexLock lock(&mu_);
    valid = ConstantTimeEquals(value.substr(kBearerScheme.size()), token_);
  }
  if (!valid) {
    return absl::UnauthenticatedError(absl::StrCat(rpc, ": the bearer token is not valid"));
  }
  return absl::OkStatus();
}

}  // namespace convnet::server
