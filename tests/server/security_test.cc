// Transport security and bearer-token authorization (docs/SECURITY.md), with
// certificates that the `openssl` command line tool generates when the test
// binary starts: a CA, a server certificate for localhost and 127.0.0.1 that
// it signed, a client certificate it signed, and a server and a client
// certificate signed by another CA. The real server runs in-process; every
// call goes over a real channel (plaintext, TLS or mutual TLS). Reload (what
// SIGHUP does) replaces the token and the TLS files of the running server.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/credentials.h"
#include "standard_services_client.h"
#include "test_support.h"

extern char** environ;

namespace convnet::server_testing {
namespace {

using ::convnet::server::ConvNetServer;
using ::convnet::server::ServerOptions;

constexpr char kToken[] = "s3cret-token-0123456789abcdef";
constexpr char kWrongToken[] = "wrong-token-0123456789abcdefgh";
constexpr char kModel[] = "seed";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Runs `args` (args[0] looked up in PATH) with stdout and stderr appended to
// `log`; returns the exit status, or -1 when it could not run.
int Run(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The certificates, generated once per test binary.
class Pki {
 public:
  std::string Path(const std::string& name) const { return dir_.Join(name); }
  const std::string& error() const { return error_; }

  // ca.pem (the CA), server.pem/server.key (CN localhost, SAN DNS:localhost
  // and IP:127.0.0.1), client.pem/client.key (signed by the CA), and
  // rogue-ca.pem with rogue.pem/rogue.key (a client certificate signed by
  // another CA) and rotated.pem/rotated.key (a server certificate like
  // server.pem, signed by that other CA).
  static const Pki& Get() {
    static const Pki pki;  // its directory goes when the binary exits
    return pki;
  }

 private:
  Pki() {
    WriteFile(Path("openssl.cnf"),
              "[req]\n"
              "distinguished_name = dn\n"
              "prompt = no\n"
              "[dn]\n"
              "CN = placeholder\n"
              "[ca_ext]\n"
              "basicConstraints = critical,CA:TRUE\n"
              "keyUsage = critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier = hash\n"
              "[server_ext]\n"
              "basicConstraints = CA:FALSE\n"
              "keyUsage = critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage = serverAuth\n"
              "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
              "[client_ext]\n"
              "basicConstraints = CA:FALSE\n"
              "keyUsage = critical,digitalSignature\n"
              "extendedKeyUsage = clientAuth\n");
    const bool ok = MakeCa("ca", "convnet test CA") && MakeCa("rogue-ca", "another CA") &&
                    MakeLeaf("server", "localhost", "ca", "server_ext", 2) &&
                    MakeLeaf("client", "convnet test client", "ca", "client_ext", 3) &&
                    MakeLeaf("rogue", "convnet rogue client", "rogue-ca", "client_ext", 4) &&
                    MakeLeaf("rotated", "localhost", "rogue-ca", "server_ext", 5);
    if (!ok) {
      error_ = absl::StrCat("generating test certificates with openssl failed (scripts/lib/common.sh installs "
                            "openssl with the test packages); its output:\n",
                            ReadFile(Path("openssl.log")));
    }
  }

  bool OpenSsl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    return Run(args, Path("openssl.log")) == 0;
  }
  // A self-signed CA certificate <name>.pem with its key <name>.key (P-256).
  bool MakeCa(const std::string& name, const std::string& cn) {
    return OpenSsl({"req", "-x509", "-config", Path("openssl.cnf"), "-extensions", "ca_ext", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Path(name + ".key"), "-out",
                    Path(name + ".pem"), "-days", "2", "-subj", "/CN=" + cn});
  }
  // <name>.pem signed by the CA <ca>, with the extensions of `section`.
  bool MakeLeaf(const std::string& name, const std::string& cn, const std::string& ca, const std::string& section,
                int serial) {
    return OpenSsl({"req", "-new", "-config", Path("openssl.cnf"), "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Path(name + ".key"), "-out",
                    Path(name + ".csr"), "-subj", "/CN=" + cn}) &&
           OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"), "-CAkey",
                    Path(ca + ".key"), "-set_serial", std::to_string(serial), "-days", "2", "-extfile",
                    Path("openssl.cnf"), "-extensions", section, "-out", Path(name + ".pem")});
  }

  TempDir dir_;
  std::string error_;
};

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new TempDir();
    const MnistDirectory& mnist = BundledMnist();
    WriteDataset(data_dir_->path(), "tiny", mnist.train.Prefix(50), mnist.test.Prefix(20));
  }
  static void TearDownTestSuite() {
    delete data_dir_;
    data_dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(Pki::Get().error(), "");
    // One stored version, so that GetModel, Predict and GetGradients have
    // something to answer with.
    absl::StatusOr<Parameters> parameters = Parameters::Initialize(1, 7);
    ASSERT_TRUE(parameters.ok()) << parameters.status();
    std::filesystem::create_directories(model_dir_.Join(absl::StrCat(kModel, "/1")));
    ASSERT_TRUE(
        WriteModelFile(model_dir_.Join(absl::StrCat(kModel, "/1/model.cnvn")), Model{*std::move(parameters), {}})
            .ok());
    WriteFile(token_dir_.Join("token"), absl::StrCat(kToken, "\n"));  // as `echo TOKEN > file` writes it
  }

  static std::string Pem(const std::string& name) { return Pki::Get().Path(name); }

  ServerOptions Options() const {
    ServerOptions options;
    options.model_dir = model_dir_.path();
    options.data_dir = data_dir_->path();
    options.threads = 2;
    return options;
  }
  ServerOptions TlsOptions() const {
    ServerOptions options = Options();
    options.tls.cert_file = Pem("server.pem");
    options.tls.key_file = Pem("server.key");
    return options;
  }
  ServerOptions MutualTlsOptions() const {
    ServerOptions options = TlsOptions();
    options.tls.client_ca_file = Pem("ca.pem");
    return options;
  }
  ServerOptions TokenOptions(bool auth_all) const {
    ServerOptions options = Options();
    options.auth_token_file = token_dir_.Join("token");
    options.auth_all = auth_all;
    return options;
  }

  void StartServer(const ServerOptions& options) {
    server_ = TestServer::Start(options);
    ASSERT_NE(server_, nullptr);
  }

  std::string Target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  std::shared_ptr<grpc::Channel> PlaintextChannel() const {
    return grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  }

  // A TLS channel to the server: <ca>.pem verifies the server; the client
  // presents <certificate>.pem and .key ("" = no certificate); the server's
  // certificate must carry `server_name` ("" = the target's host, 127.0.0.1).
  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& ca = "ca", const std::string& certificate = "",
                                            const std::string& server_name = "") const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(Pem(ca + ".pem"));
    if (!certificate.empty()) {
      ssl.pem_cert_chain = ReadFile(Pem(certificate + ".pem"));
      ssl.pem_private_key = ReadFile(Pem(certificate + ".key"));
    }
    grpc::ChannelArguments arguments;
    if (!server_name.empty()) arguments.SetSslTargetNameOverride(server_name);
    // A connection of its own, never one that another channel opened before
    // the server's certificate changed.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(Target(), grpc::SslCredentials(ssl), arguments);
  }

  // ListModels over `channel`: the cheapest ConvNet call, open by default.
  static grpc::Status ListModels(const std::shared_ptr<grpc::Channel>& channel) {
    v1::ListModelsResponse response;
    return v1::ConvNet::NewStub(channel)->ListModels(Context(absl::Seconds(20)).get(), {}, &response);
  }

  static grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel) {
    wire::HealthCheckResponse response;
    grpc::Status status = HealthCheck(channel, "", &response);
    if (status.ok() && response.status() != wire::HealthCheckResponse::SERVING) {
      return grpc::Status(grpc::StatusCode::UNKNOWN, "not SERVING");
    }
    return status;
  }

  static inline TempDir* data_dir_ = nullptr;
  TempDir model_dir_;
  TempDir token_dir_;
  std::unique_ptr<TestServer> server_;
};

// --- TLS ----------------------------------------------------------------------

TEST_F(SecurityTest, TlsServesClientsThatTrustItsCa) {
  StartServer(TlsOptions());
  const auto channel = TlsChannel();
  const grpc::Status status = ListModels(channel);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_TRUE(Health(channel).ok());
}

TEST_F(SecurityTest, TlsRefusesPlaintextClients) {
  StartServer(TlsOptions());
  EXPECT_EQ(ListModels(PlaintextChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Health(PlaintextChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, TlsClientRefusesAServerItsRootsDoNotVouchFor) {
  StartServer(TlsOptions());
  EXPECT_EQ(ListModels(TlsChannel("rogue-ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, TlsClientChecksTheServerNameItIsGiven) {
  StartServer(TlsOptions());
  EXPECT_TRUE(ListModels(TlsChannel("ca", "", "localhost")).ok());
  EXPECT_EQ(ListModels(TlsChannel("ca", "", "elsewhere.example")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, PlaintextServerRefusesTlsClients) {
  StartServer(Options());
  EXPECT_EQ(ListModels(TlsChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(ListModels(PlaintextChannel()).ok());
}

// --- Mutual TLS -----------------------------------------------------------------

TEST_F(SecurityTest, MutualTlsAcceptsAClientCertificateSignedByTheClientCa) {
  StartServer(MutualTlsOptions());
  const auto channel = TlsChannel("ca", "client");
  const grpc::Status status = ListModels(channel);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_TRUE(Health(channel).ok());
}

TEST_F(SecurityTest, MutualTlsRefusesAClientWithoutCertificate) {
  StartServer(MutualTlsOptions());
  EXPECT_EQ(ListModels(TlsChannel()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, MutualTlsRefusesAClientCertificateFromAnotherCa) {
  StartServer(MutualTlsOptions());
  EXPECT_EQ(ListModels(TlsChannel("ca", "rogue")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// --- Bearer token -----------------------------------------------------------------

// What a call sends in its authorization header.
enum class Credential { kNone, kWrongToken, kRightToken };

std::unique_ptr<grpc::ClientContext> ContextWith(Credential credential) {
  std::unique_ptr<grpc::ClientContext> context = Context(absl::Seconds(60));
  if (credential == Credential::kWrongToken) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", kWrongToken));
  }
  if (credential == Credential::kRightToken) context->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  return context;
}

// One call of every ConvNet method (a valid request for each), by name.
struct NamedCall {
  std::string name;
  std::function<grpc::Status(v1::ConvNet::Stub&, Credential)> call;
};

v1::Image SomeImage() { return PixelImage(BundledMnist().test.image(0)); }

std::vector<NamedCall> GuardedCalls() {
  return {
      {"Train",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::TrainResponse response;
         return stub.Train(ContextWith(credential).get(), FreshTrainRequest("trained", 1, "tiny", 1, 10), &response);
       }},
      {"CancelTrainingJob",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::CancelTrainingJobRequest request;
         request.set_job_id("no-such-job");
         v1::TrainingJob response;
         return stub.CancelTrainingJob(ContextWith(credential).get(), request, &response);
       }},
      {"GetGradients",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::GetGradientsRequest request;
         request.mutable_model()->set_model_name(kModel);
         request.set_cost(v1::COST_CROSS_ENTROPY);
         AddExamples(BundledMnist().test, 2, request.mutable_examples());
         v1::GetGradientsResponse response;
         return stub.GetGradients(ContextWith(credential).get(), request, &response);
       }},
      {"GetModel(include_parameters)",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::GetModelRequest request;
         request.set_model_name(kModel);
         request.set_include_parameters(true);
         v1::GetModelResponse response;
         return stub.GetModel(ContextWith(credential).get(), request, &response);
       }},
  };
}

std::vector<NamedCall> OpenCalls() {
  return {
      {"Predict",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::PredictRequest request;
         request.set_model_name(kModel);
         *request.add_images() = SomeImage();
         v1::PredictResponse response;
         return stub.Predict(ContextWith(credential).get(), request, &response);
       }},
      {"ListModels",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::ListModelsResponse response;
         return stub.ListModels(ContextWith(credential).get(), {}, &response);
       }},
      {"GetModel",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::GetModelRequest request;
         request.set_model_name(kModel);
         v1::GetModelResponse response;
         return stub.GetModel(ContextWith(credential).get(), request, &response);
       }},
      {"GetTrainingJob",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::GetTrainingJobRequest request;
         request.set_job_id("no-such-job");
         v1::TrainingJob response;
         return stub.GetTrainingJob(ContextWith(credential).get(), request, &response);
       }},
      {"ListTrainingJobs",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::ListTrainingJobsResponse response;
         return stub.ListTrainingJobs(ContextWith(credential).get(), {}, &response);
       }},
      {"WatchTrainingJob",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::WatchTrainingJobRequest request;
         request.set_job_id("no-such-job");
         auto context = ContextWith(credential);
         auto reader = stub.WatchTrainingJob(context.get(), request);
         v1::WatchTrainingJobResponse message;
         while (reader->Read(&message)) {
         }
         return reader->Finish();
       }},
      {"GetServerStats",
       [](v1::ConvNet::Stub& stub, Credential credential) {
         v1::GetServerStatsResponse response;
         return stub.GetServerStats(ContextWith(credential).get(), {}, &response);
       }},
  };
}

// Passed the token check: OK, or an error of the request itself (an unknown
// job is NOT_FOUND).
bool PassedAuthorization(const grpc::Status& status) {
  return status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND;
}

TEST_F(SecurityTest, GuardedCallsWithoutTokenAreUnauthenticated) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const NamedCall& call : GuardedCalls()) {
    const grpc::Status status = call.call(server_->stub(), Credential::kNone);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << call.name;
    EXPECT_NE(status.error_message().find("needs a token"), std::string::npos)
        << call.name << ": " << status.error_message();
  }
}

TEST_F(SecurityTest, GuardedCallsWithWrongTokenAreUnauthenticatedAndTheTokenIsNotEchoed) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const NamedCall& call : GuardedCalls()) {
    const grpc::Status status = call.call(server_->stub(), Credential::kWrongToken);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << call.name;
    EXPECT_NE(status.error_message().find("not valid"), std::string::npos)
        << call.name << ": " << status.error_message();
    EXPECT_EQ(status.error_message().find(kWrongToken), std::string::npos) << status.error_message();
    EXPECT_EQ(status.error_message().find(kToken), std::string::npos) << status.error_message();
  }
}

TEST_F(SecurityTest, GuardedCallsWithTheTokenAreServed) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const NamedCall& call : GuardedCalls()) {
    const grpc::Status status = call.call(server_->stub(), Credential::kRightToken);
    EXPECT_TRUE(PassedAuthorization(status)) << call.name << ": " << status.error_code() << ": "
                                             << status.error_message();
  }
}

TEST_F(SecurityTest, OtherCallsAndHealthAndReflectionNeedNoTokenWithoutAuthAll) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const NamedCall& call : OpenCalls()) {
    const grpc::Status status = call.call(server_->stub(), Credential::kNone);
    EXPECT_TRUE(PassedAuthorization(status)) << call.name << ": " << status.error_code() << ": "
                                             << status.error_message();
  }
  EXPECT_TRUE(Health(server_->channel()).ok());
  wire::ServerReflectionRequest request;
  request.set_list_services("");
  wire::ServerReflectionResponse response;
  EXPECT_TRUE(Reflect(server_->channel(), request, &response).ok());
}

TEST_F(SecurityTest, AuthAllGuardsEveryConvNetCallButNotHealth) {
  StartServer(TokenOptions(/*auth_all=*/true));
  std::vector<NamedCall> calls = OpenCalls();
  for (NamedCall& call : GuardedCalls()) calls.push_back(std::move(call));
  for (const NamedCall& call : calls) {
    EXPECT_EQ(call.call(server_->stub(), Credential::kNone).error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << call.name;
    EXPECT_EQ(call.call(server_->stub(), Credential::kWrongToken).error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << call.name;
    const grpc::Status status = call.call(server_->stub(), Credential::kRightToken);
    EXPECT_TRUE(PassedAuthorization(status)) << call.name << ": " << status.error_code() << ": "
                                             << status.error_message();
  }
  EXPECT_TRUE(Health(server_->channel()).ok());
}

TEST_F(SecurityTest, AuthAllTakesReflectionOff) {
  StartServer(TokenOptions(/*auth_all=*/true));
  wire::ServerReflectionRequest request;
  request.set_list_services("");
  wire::ServerReflectionResponse response;
  EXPECT_EQ(Reflect(server_->channel(), request, &response).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(SecurityTest, TwoAuthorizationHeadersAreRefusedEvenIfOneIsRight) {
  StartServer(TokenOptions(/*auth_all=*/false));
  auto context = ContextWith(Credential::kRightToken);
  context->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  v1::GetModelRequest request;
  request.set_model_name(kModel);
  request.set_include_parameters(true);
  v1::GetModelResponse response;
  const grpc::Status status = server_->stub().GetModel(context.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("2 authorization headers"), std::string::npos) << status.error_message();
}

TEST_F(SecurityTest, TheBearerSchemeIsCaseInsensitiveAndOtherSchemesAreRefused) {
  StartServer(TokenOptions(/*auth_all=*/false));
  const auto get_model = [&](const std::string& header) {
    auto context = Context();
    context->AddMetadata("authorization", header);
    v1::GetModelRequest request;
    request.set_model_name(kModel);
    request.set_include_parameters(true);
    v1::GetModelResponse response;
    return server_->stub().GetModel(context.get(), request, &response);
  };
  EXPECT_TRUE(get_model(absl::StrCat("bearer ", kToken)).ok());
  EXPECT_TRUE(get_model(absl::StrCat("BEARER ", kToken)).ok());
  const grpc::Status basic = get_model(absl::StrCat("Basic ", kToken));
  EXPECT_EQ(basic.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(basic.error_message().find("not of the form"), std::string::npos) << basic.error_message();
  EXPECT_EQ(get_model(kToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(get_model(absl::StrCat("Bearer ", kToken, "x")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(get_model(absl::StrCat("Bearer ", std::string(kToken).substr(1))).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, RefusedCallsAreCountedAsUnauthenticatedInTheStatistics) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const NamedCall& call : GuardedCalls()) {
    if (call.name == "Train") {
      EXPECT_EQ(call.call(server_->stub(), Credential::kNone).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    }
  }
  v1::GetServerStatsResponse stats;
  ASSERT_TRUE(server_->stub().GetServerStats(Context().get(), {}, &stats).ok());
  int64_t unauthenticated = -1;
  for (const v1::MethodStats& method : stats.methods()) {
    if (method.method() != "Train") continue;
    EXPECT_EQ(method.count(), 1);
    for (const v1::StatusCodeCount& code : method.errors_by_code()) {
      if (code.code_name() == "UNAUTHENTICATED") unauthenticated = code.count();
    }
  }
  EXPECT_EQ(unauthenticated, 1);
}

TEST_F(SecurityTest, TokenAndMutualTlsTogether) {
  ServerOptions options = MutualTlsOptions();
  options.auth_token_file = token_dir_.Join("token");
  StartServer(options);
  auto stub = v1::ConvNet::NewStub(TlsChannel("ca", "client"));
  const NamedCall get_model = GuardedCalls().back();
  EXPECT_EQ(get_model.call(*stub, Credential::kNone).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status status = get_model.call(*stub, Credential::kRightToken);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
}

// --- Start-up errors -----------------------------------------------------------------

// The status of starting a server with `options`, and its message.
absl::Status StartStatus(ServerOptions options) {
  options.address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<ConvNetServer>> server = ConvNetServer::Start(options);
  return server.status();
}

void ExpectInvalid(const ServerOptions& options, const std::string& fragment) {
  const absl::Status status = StartStatus(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(fragment), std::string::npos) << "\"" << status.message() << "\" lacks \""
                                                                << fragment << "\"";
}

TEST_F(SecurityTest, IncompleteFlagCombinationsAreInvalidArguments) {
  ServerOptions cert_only = Options();
  cert_only.tls.cert_file = Pem("server.pem");
  ExpectInvalid(cert_only, "--tls_cert needs --tls_key");

  ServerOptions key_only = Options();
  key_only.tls.key_file = Pem("server.key");
  ExpectInvalid(key_only, "--tls_key needs --tls_cert");

  ServerOptions client_ca_only = Options();
  client_ca_only.tls.client_ca_file = Pem("ca.pem");
  ExpectInvalid(client_ca_only, "--tls_client_ca (mutual TLS) needs --tls_cert");

  ServerOptions auth_all_only = Options();
  auth_all_only.auth_all = true;
  ExpectInvalid(auth_all_only, "--auth_all needs --auth_token_file");
}

TEST_F(SecurityTest, UnreadableOrWrongFilesAreInvalidArgumentsNamingTheFlag) {
  const std::string missing = token_dir_.Join("missing.pem");

  ServerOptions options = TlsOptions();
  options.tls.cert_file = missing;
  ExpectInvalid(options, "--tls_cert: cannot read " + missing + ": No such file or directory");

  options = TlsOptions();
  options.tls.key_file = missing;
  ExpectInvalid(options, "--tls_key: cannot read");

  options = MutualTlsOptions();
  options.tls.client_ca_file = token_dir_.path();  // a directory
  ExpectInvalid(options, "--tls_client_ca: cannot read");

  options = TlsOptions();  // swapped
  options.tls.cert_file = Pem("server.key");
  options.tls.key_file = Pem("server.pem");
  ExpectInvalid(options, "--tls_cert: " + Pem("server.key") + " holds no PEM \"CERTIFICATE\" block");

  options = TokenOptions(false);
  options.auth_token_file = missing;
  ExpectInvalid(options, "--auth_token_file: cannot read");
}

TEST_F(SecurityTest, EmptyShortOrUnprintableTokensAreInvalidArguments) {
  ServerOptions options = TokenOptions(false);
  WriteFile(options.auth_token_file, "\n");
  ExpectInvalid(options, "--auth_token_file: the token is empty");
  WriteFile(options.auth_token_file, "short\n");
  ExpectInvalid(options, "must be 16..1024 bytes, got 5");
  WriteFile(options.auth_token_file, std::string(2000, 'x'));
  ExpectInvalid(options, "is larger than");
  WriteFile(options.auth_token_file, "two words in one token\n");
  ExpectInvalid(options, "printable ASCII characters without spaces");
  WriteFile(options.auth_token_file, absl::StrCat(kToken, "\r\n"));
  EXPECT_TRUE(StartStatus(options).ok());
}

TEST_F(SecurityTest, AKeyThatDoesNotMatchTheCertificateIsAnInvalidArgument) {
  ServerOptions options = TlsOptions();
  options.tls.key_file = Pem("client.key");
  ExpectInvalid(options, "--tls_key: " + Pem("client.key") + " is not the private key of the certificate in --tls_cert");
}

// --- Reload (SIGHUP): rotation without a restart ---------------------------------------

// A call that needs the token, with `token` as its bearer token.
grpc::Status ExportParameters(v1::ConvNet::Stub& stub, const std::string& token) {
  auto context = Context();
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  v1::GetModelRequest request;
  request.set_model_name(kModel);
  request.set_include_parameters(true);
  v1::GetModelResponse response;
  return stub.GetModel(context.get(), request, &response);
}

TEST_F(SecurityTest, ReloadReplacesTheToken) {
  StartServer(TokenOptions(/*auth_all=*/false));
  ASSERT_TRUE(ExportParameters(server_->stub(), kToken).ok());
  WriteFile(token_dir_.Join("token"), absl::StrCat(kWrongToken, "\n"));
  ASSERT_TRUE(server_->server().Reload().ok());
  EXPECT_EQ(ExportParameters(server_->stub(), kToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status status = ExportParameters(server_->stub(), kWrongToken);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
}

TEST_F(SecurityTest, AFailedReloadKeepsTheToken) {
  StartServer(TokenOptions(/*auth_all=*/false));
  for (const std::string& bad : {std::string("\n"), std::string("short\n")}) {
    WriteFile(token_dir_.Join("token"), bad);
    const absl::Status reload = server_->server().Reload();
    EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument) << reload;
    EXPECT_NE(reload.message().find("--auth_token_file"), std::string::npos) << reload;
    EXPECT_TRUE(ExportParameters(server_->stub(), kToken).ok());
  }
  std::filesystem::remove(token_dir_.Join("token"));
  EXPECT_EQ(server_->server().Reload().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ExportParameters(server_->stub(), kToken).ok());
}

// Waits (bounded) until `call` succeeds; the provider takes up a reloaded
// certificate within server::kTlsReloadDelay.
bool EventuallyOk(const std::function<grpc::Status()>& call) {
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30); absl::Now() < give_up;) {
    if (call().ok()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// Copies of the server's TLS files that a test may overwrite.
class TlsReloadTest : public SecurityTest {
 protected:
  ServerOptions RotatableTlsOptions(bool mutual) {
    CopyPem("server.pem", "cert.pem");
    CopyPem("server.key", "key.pem");
    CopyPem("ca.pem", "client-ca.pem");
    ServerOptions options = Options();
    options.tls.cert_file = token_dir_.Join("cert.pem");
    options.tls.key_file = token_dir_.Join("key.pem");
    if (mutual) options.tls.client_ca_file = token_dir_.Join("client-ca.pem");
    return options;
  }
  void CopyPem(const std::string& from, const std::string& to) { WriteFile(token_dir_.Join(to), ReadFile(Pem(from))); }
};

TEST_F(TlsReloadTest, ReloadServesTheRotatedCertificate) {
  StartServer(RotatableTlsOptions(/*mutual=*/false));
  ASSERT_TRUE(ListModels(TlsChannel("ca")).ok());
  ASSERT_EQ(ListModels(TlsChannel("rogue-ca")).error_code(), grpc::StatusCode::UNAVAILABLE);

  CopyPem("rotated.pem", "cert.pem");
  CopyPem("rotated.key", "key.pem");
  ASSERT_TRUE(server_->server().Reload().ok());
  EXPECT_TRUE(EventuallyOk([&] { return ListModels(TlsChannel("rogue-ca")); }))
      << "the rotated certificate (signed by the other CA) is not served";
  EXPECT_EQ(ListModels(TlsChannel("ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsReloadTest, ReloadReplacesTheClientCa) {
  StartServer(RotatableTlsOptions(/*mutual=*/true));
  ASSERT_TRUE(ListModels(TlsChannel("ca", "client")).ok());

  CopyPem("rogue-ca.pem", "client-ca.pem");
  ASSERT_TRUE(server_->server().Reload().ok());
  EXPECT_TRUE(EventuallyOk([&] { return ListModels(TlsChannel("ca", "rogue")); }))
      << "a client certificate of the new client CA is refused";
  EXPECT_EQ(ListModels(TlsChannel("ca", "client")).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsReloadTest, AFailedReloadKeepsTheCertificate) {
  StartServer(RotatableTlsOptions(/*mutual=*/false));
  // A certificate whose key is not (yet) in place, then a file that is no
  // certificate at all, then no file.
  CopyPem("rotated.pem", "cert.pem");
  absl::Status reload = server_->server().Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument) << reload;
  EXPECT_NE(reload.message().find("is not the private key of the certificate"), std::string::npos) << reload;
  WriteFile(token_dir_.Join("cert.pem"), "not a certificate\n");
  reload = server_->server().Reload();
  EXPECT_NE(reload.message().find("--tls_cert"), std::string::npos) << reload;
  std::filesystem::remove(token_dir_.Join("cert.pem"));
  EXPECT_EQ(server_->server().Reload().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(ListModels(TlsChannel("ca")).ok());
}

TEST_F(TlsReloadTest, OnlyASuccessfulReloadReplacesWhatGrpcReads) {
  const ServerOptions options = RotatableTlsOptions(/*mutual=*/true);
  absl::StatusOr<std::unique_ptr<server::ServerTransportSecurity>> security =
      server::ServerTransportSecurity::Create(options.tls);
  ASSERT_TRUE(security.ok()) << security.status();
  absl::StatusOr<bool> changed = (*security)->Reload();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed);

  CopyPem("rotated.pem", "cert.pem");  // its key is not in place yet
  EXPECT_EQ((*security)->Reload().status().code(), absl::StatusCode::kInvalidArgument);
  CopyPem("server.pem", "cert.pem");
  changed = (*security)->Reload();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed) << "the failed reload replaced something";

  CopyPem("rogue-ca.pem", "client-ca.pem");
  changed = (*security)->Reload();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
}

// --- The comparison ------------------------------------------------------------------

TEST(SecurityConstantTimeEqualsTest, EqualOnlyForTheSameBytes) {
  using server::ConstantTimeEquals;
  const std::string token(64, 'a');
  EXPECT_TRUE(ConstantTimeEquals(token, token));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals(token, "b" + token.substr(1)));
  EXPECT_FALSE(ConstantTimeEquals(token, token.substr(0, 63) + "b"));
  EXPECT_FALSE(ConstantTimeEquals(token, token.substr(0, 63)));
  EXPECT_FALSE(ConstantTimeEquals(token, token + std::string(1, '\0')));
  EXPECT_FALSE(ConstantTimeEquals(token, ""));
  const std::string too_long(server::kMaxTokenBytes + 1, 'a');
  EXPECT_FALSE(ConstantTimeEquals(too_long, too_long));
}

// --- convnet_client ------------------------------------------------------------------

struct ClientRun {
  int exit_status = -1;
  std::string output;  // stdout and stderr
};

ClientRun RunClient(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), CONVNET_CLIENT_BINARY);
  const std::string log = dir.Join("client.log");
  std::filesystem::remove(log);
  ClientRun run;
  run.exit_status = Run(args, log);
  run.output = ReadFile(log);
  return run;
}

TEST_F(SecurityTest, ClientTrainWithoutModelIsAUsageErrorNamingTheFlag) {
  // Refused before any connection: the address is never dialled.
  const ClientRun run = RunClient(token_dir_, {"train", "--address=127.0.0.1:1", "--dataset=mnist"});
  EXPECT_EQ(run.exit_status, 2) << run.output;
  EXPECT_NE(run.output.find("--model=NAME is required"), std::string::npos) << run.output;
}

TEST_F(SecurityTest, ClientFlagsForTlsMutualTlsAndToken) {
  ServerOptions options = MutualTlsOptions();
  options.auth_token_file = token_dir_.Join("token");
  options.auth_all = true;
  StartServer(options);
  const std::string address = absl::StrCat("--address=", Target());
  const std::string tls_ca = "--tls_ca=" + Pem("ca.pem");
  const std::vector<std::string> client_cert = {"--tls_cert=" + Pem("client.pem"),
                                                "--tls_key=" + Pem("client.key")};
  const std::string token = "--auth_token_file=" + token_dir_.Join("token");

  // Health needs the certificates but no token.
  ClientRun run = RunClient(token_dir_, {"health", address, tls_ca, client_cert[0], client_cert[1]});
  EXPECT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("SERVING"), std::string::npos) << run.output;

  // Under --auth_all, stats needs the token.
  run = RunClient(token_dir_, {"stats", address, tls_ca, client_cert[0], client_cert[1]});
  EXPECT_EQ(run.exit_status, 1) << run.output;
  EXPECT_NE(run.output.find("UNAUTHENTICATED"), std::string::npos) << run.output;
  run = RunClient(token_dir_, {"stats", "--json", address, tls_ca, client_cert[0], client_cert[1], token});
  EXPECT_EQ(run.exit_status, 0) << run.output;

  // 127.0.0.1 checked against the name "localhost".
  run = RunClient(token_dir_,
                  {"health", address, tls_ca, client_cert[0], client_cert[1], "--tls_server_name=localhost"});
  EXPECT_EQ(run.exit_status, 0) << run.output;

  // Without the client certificate, or without TLS: unreachable.
  run = RunClient(token_dir_, {"health", address, tls_ca});
  EXPECT_EQ(run.exit_status, 3) << run.output;
  run = RunClient(token_dir_, {"health", address});
  EXPECT_EQ(run.exit_status, 3) << run.output;
  EXPECT_NE(run.output.find("If the server uses TLS, pass --tls_ca"), std::string::npos) << run.output;

  // Bad flags: usage errors.
  run = RunClient(token_dir_, {"health", address, tls_ca, client_cert[0]});
  EXPECT_EQ(run.exit_status, 2) << run.output;
  EXPECT_NE(run.output.find("--tls_cert needs --tls_key"), std::string::npos) << run.output;
  run = RunClient(token_dir_, {"health", address, "--tls_ca=" + token_dir_.Join("missing.pem")});
  EXPECT_EQ(run.exit_status, 2) << run.output;
  EXPECT_NE(run.output.find("--tls_ca: cannot read"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace convnet::server_testing
